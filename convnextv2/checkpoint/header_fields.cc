#include "convnextv2/checkpoint/header_fields.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "convnextv2/config/choices.h"

namespace convnextv2::checkpoint {
namespace {

const config::Choices<Kind>& Kinds() {
  static const auto* const kKinds = new config::Choices<Kind>(
      "header kind", {{"training", Kind::kTraining}, {"weights", Kind::kWeights}});
  return *kKinds;
}

const config::Choices<BestOf>& BestOfs() {
  static const auto* const kBestOfs = new config::Choices<BestOf>(
      "header best_of", {{"model", BestOf::kModel}, {"model_ema", BestOf::kModelEma}});
  return *kBestOfs;
}

template <typename Enum>
absl::StatusOr<Enum> ParseIn(const config::Choices<Enum>& choices, absl::string_view value,
                             absl::string_view file) {
  absl::StatusOr<Enum> parsed = choices.Parse(value);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", parsed.status().message()));
  }
  return parsed;
}

}  // namespace

absl::StatusOr<Kind> KindOf(const CheckpointHeader& header, absl::string_view file) {
  return ParseIn(Kinds(), header.kind(), file);
}

absl::StatusOr<std::optional<BestOf>> BestOfOf(const CheckpointHeader& header,
                                               absl::string_view file) {
  if (!header.has_best_of()) return std::optional<BestOf>();
  absl::StatusOr<BestOf> b = ParseIn(BestOfs(), header.best_of(), file);
  if (!b.ok()) return b.status();
  return std::optional<BestOf>(*b);
}

absl::string_view KindName(Kind kind) { return Kinds().Name(kind); }
absl::string_view BestOfName(BestOf best_of) { return BestOfs().Name(best_of); }

void SetKind(Kind kind, CheckpointHeader* header) {
  header->set_kind(std::string(KindName(kind)));
}

void SetBestOf(BestOf best_of, CheckpointHeader* header) {
  header->set_best_of(std::string(BestOfName(best_of)));
}

}  // namespace convnextv2::checkpoint
