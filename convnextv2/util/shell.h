// Running small shell commands (git, sbatch, squeue) and quoting their arguments.
//
//   std::string out;
//   int rc = RunShell("git -C " + ShellQuote(dir) + " rev-parse HEAD", &out);
#ifndef CONVNEXTV2_UTIL_SHELL_H_
#define CONVNEXTV2_UTIL_SHELL_H_

#include <string>

#include "absl/strings/string_view.h"

namespace convnextv2::util {

// `s` in single quotes, safe to paste into a /bin/sh command line.
std::string ShellQuote(absl::string_view s);

// Runs `command` with /bin/sh, puts its stdout in `out` and returns its exit status (-1 when it
// could not be started, 128+N when killed by signal N).
int RunShell(const std::string& command, std::string* out);

}  // namespace convnextv2::util

#endif  // CONVNEXTV2_UTIL_SHELL_H_
