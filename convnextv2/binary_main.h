// The shared main of the training binaries: flags -> validated config -> run.
//
//   int main(int argc, char** argv) {
//     return convnextv2::BinaryMain(argc, argv, config::Mode::kPretrain, "pretrain",
//                                   [](const ExperimentConfig& c, const std::string& cmd) {
//                                     return RunPretrain(c, {cmd}).status();
//                                   });
//   }
//
// Exit status: 0 done, 2 bad command line or config (nothing written), 1 the run failed,
// 75 stopped on a signal after saving a checkpoint (requeue me).
#ifndef CONVNEXTV2_BINARY_MAIN_H_
#define CONVNEXTV2_BINARY_MAIN_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convnextv2/config/config.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2 {

// `name` is the binary's name; its built-in default is the embedded configs/<name>_default.pbtxt.
// The run returns the process exit status when it did not fail (0, or 75 = kExitRequeue when
// it stopped on a signal after saving a checkpoint).
using RunFunction = std::function<absl::StatusOr<int>(const ExperimentConfig& config,
                                                      const std::string& command_line)>;
int BinaryMain(int argc, char** argv, config::Mode mode, const std::string& name,
               const RunFunction& run);

}  // namespace convnextv2

#endif  // CONVNEXTV2_BINARY_MAIN_H_
