// The ConvNeXt V2 family by name: depths and widths of the eight official variants.
//
// Free of libtorch so that config validation (and the launcher, which validates sweeps) can
// check a model name without linking the tensor library.
//
//   absl::StatusOr<Variant> v = FindVariant("convnextv2_atto");
//   // v->depths == {2, 2, 6, 2}, v->dims == {40, 80, 160, 320}
#ifndef CONVNEXTV2_MODELS_VARIANTS_H_
#define CONVNEXTV2_MODELS_VARIANTS_H_

#include <array>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"

namespace convnextv2::models {

struct Variant {
  std::string name;            // e.g. "convnextv2_atto"
  std::array<int, 4> depths;   // blocks per stage
  std::array<int, 4> dims;     // channels per stage
};

// All variants, smallest first.
const std::vector<Variant>& AllVariants();

// The variant called `name` (the official names, e.g. convnextv2_tiny); NotFound names the
// allowed ones.
absl::StatusOr<Variant> FindVariant(absl::string_view name);

// "convnextv2_atto, convnextv2_femto, ..." for error messages and --help.
std::string VariantNamesList();

}  // namespace convnextv2::models

#endif  // CONVNEXTV2_MODELS_VARIANTS_H_
