#include "convnextv2/config/checks.h"

#include "absl/strings/str_join.h"

namespace convnextv2::config {

absl::Status Checks::ToStatus(absl::string_view title) const {
  if (errors_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(title, ":\n  ", absl::StrJoin(errors_, "\n  ")));
}

}  // namespace convnextv2::config
