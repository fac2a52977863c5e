// The command line of the finetune and pretrain binaries.
//
//   finetune [--config=FILE|default|official] [--set path.to.field=value]...
//            [--<official flag> value]... [--print_config] [--help]
//
// Official flags are the leaf field names (`--batch_size 32 --blr 6.25e-4 --model_ema True`), so
// a command from the official TRAINING.md runs after swapping `python main_finetune.py` for the
// binary. Assignments apply in the order given, over a base config:
//   --config=FILE       that file, over the mode's official defaults;
//   --config=official   the official script's defaults;
//   --config=default    the binary's built-in default run (configs/<mode>_default.pbtxt);
//   no --config         the built-in default, unless the command line sets data_path, in which
//                       case the official defaults (an official command means what it means in
//                       the official script).
// Relative paths resolve against the user's directory (BUILD_WORKING_DIRECTORY under bazel run).
#ifndef CONVNEXTV2_CONFIG_COMMAND_LINE_H_
#define CONVNEXTV2_CONFIG_COMMAND_LINE_H_

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/config/config.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::config {

struct CommandLine {
  ExperimentConfig config;              // resolved: base + assignments, paths absolute
  std::string base;                     // which base was used, for the log
  std::vector<std::string> assignments; // "path=value" in the order applied
  std::vector<std::string> passthrough; // flags for gflags/glog (e.g. --v=1)
  std::string working_dir;              // where relative paths were resolved
  std::vector<std::string> notes;       // what resolution set from the data, for the log
  bool help = false;
  bool print_config = false;
};

struct BuiltinDefault {
  absl::string_view name;  // e.g. "configs/finetune_default.pbtxt"
  absl::string_view text;  // its contents (embedded in the binary)
};

// Parses argv[1..]. `gflags_known(name)` says whether a non-config flag belongs to gflags/glog
// (those are passed through); anything else unknown is an error with a suggestion. Does not
// validate: call Validate() on the result.
absl::StatusOr<CommandLine> ParseCommandLine(
    int argc, const char* const* argv, Mode mode, const BuiltinDefault& builtin,
    bool (*gflags_known)(absl::string_view name) = nullptr);

// The directory relative paths are resolved against: BUILD_WORKING_DIRECTORY when set (bazel
// run), the current directory otherwise.
std::string UserWorkingDirectory();

// Usage text with every field: path, official flag, type, default and its documentation.
std::string HelpText(Mode mode, absl::string_view program);

}  // namespace convnextv2::config

#endif  // CONVNEXTV2_CONFIG_COMMAND_LINE_H_
