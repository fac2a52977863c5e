#include "convnextv2/util/signals.h"

#include <csignal>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace convnextv2::util {

absl::StatusOr<int> ParseSignalName(absl::string_view name) {
  std::string n = absl::AsciiStrToUpper(name);
  if (n.empty() || n == "NONE") return 0;
  if (absl::StartsWith(n, "SIG")) n = n.substr(3);
  static const struct {
    const char* name;
    int number;
  } kSignals[] = {{"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},
                  {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"CONT", SIGCONT}};
  for (const auto& s : kSignals) {
    if (n == s.name) return s.number;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "'", name, "' is not a signal name (SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCONT "
      "or none)"));
}

}  // namespace convnextv2::util
