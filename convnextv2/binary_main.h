// The shared main of the training binaries: flags -> validated config -> run.
//
//   int main(int argc, char** argv) {
//     return convnextv2::BinaryMain(argc, argv, config::Mode::kPretrain, "pretrain",
//                                   [](const ExperimentConfig& c, const std::string& cmd) {
//                                     return RunPretrain(c, {cmd}).status();
//                                   });
//   }
//
// Exit status: 0 done, 2 bad command line or config (nothing written), 1 the run failed.
#ifndef CONVNEXTV2_BINARY_MAIN_H_
#define CONVNEXTV2_BINARY_MAIN_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "convnextv2/config/config.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2 {

// `name` is the binary's name; its built-in default is the embedded configs/<name>_default.pbtxt.
using RunFunction =
    std::function<absl::Status(const ExperimentConfig& config, const std::string& command_line)>;
int BinaryMain(int argc, char** argv, config::Mode mode, const std::string& name,
               const RunFunction& run);

}  // namespace convnextv2

#endif  // CONVNEXTV2_BINARY_MAIN_H_
