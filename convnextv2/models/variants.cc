#include "convnextv2/models/variants.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace convnextv2::models {

const std::vector<Variant>& AllVariants() {
  static const std::vector<Variant>* const kVariants = new std::vector<Variant>{
      {"convnextv2_atto", {2, 2, 6, 2}, {40, 80, 160, 320}},
      {"convnextv2_femto", {2, 2, 6, 2}, {48, 96, 192, 384}},
      {"convnextv2_pico", {2, 2, 6, 2}, {64, 128, 256, 512}},
      {"convnextv2_nano", {2, 2, 8, 2}, {80, 160, 320, 640}},
      {"convnextv2_tiny", {3, 3, 9, 3}, {96, 192, 384, 768}},
      {"convnextv2_base", {3, 3, 27, 3}, {128, 256, 512, 1024}},
      {"convnextv2_large", {3, 3, 27, 3}, {192, 384, 768, 1536}},
      {"convnextv2_huge", {3, 3, 27, 3}, {352, 704, 1408, 2816}},
  };
  return *kVariants;
}

std::string VariantNamesList() {
  std::vector<std::string> names;
  for (const Variant& v : AllVariants()) names.push_back(v.name);
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<Variant> FindVariant(absl::string_view name) {
  // The official models/convnextv2.py names the pico builder `convnext_pico`; accept both.
  if (name == "convnext_pico") name = "convnextv2_pico";
  for (const Variant& v : AllVariants()) {
    if (v.name == name) return v;
  }
  if (name == kTestVariant) return Variant{kTestVariant, {1, 1, 2, 1}, {8, 16, 32, 64}};
  return absl::NotFoundError(
      absl::StrCat("unknown model '", name, "'; allowed: ", VariantNamesList()));
}

}  // namespace convnextv2::models
