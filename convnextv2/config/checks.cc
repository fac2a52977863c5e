#include "convnextv2/config/checks.h"

#include <algorithm>

#include "absl/strings/str_join.h"

namespace convnextv2::config {

void Checks::RequireOneOf(absl::string_view field, absl::string_view value,
                          std::initializer_list<absl::string_view> allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  errors_.push_back(
      absl::StrCat(field, ": '", value, "' is not one of: ", absl::StrJoin(allowed, ", ")));
}

absl::Status Checks::ToStatus(absl::string_view title) const {
  if (errors_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(title, ":\n  ", absl::StrJoin(errors_, "\n  ")));
}

}  // namespace convnextv2::config
