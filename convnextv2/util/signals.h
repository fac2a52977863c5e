// Signal names as users write them in configs ("SIGUSR2", "USR2", "none"), without libtorch.
//
//   absl::StatusOr<int> sig = ParseSignalName("SIGUSR2");   // SIGUSR2; "none" -> 0
#ifndef CONVNEXTV2_UTIL_SIGNALS_H_
#define CONVNEXTV2_UTIL_SIGNALS_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnextv2::util {

// SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCONT (with or without "SIG"), or "none"/"" (0).
absl::StatusOr<int> ParseSignalName(absl::string_view name);

}  // namespace convnextv2::util

#endif  // CONVNEXTV2_UTIL_SIGNALS_H_
