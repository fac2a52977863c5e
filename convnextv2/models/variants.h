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

// All official variants, smallest first.
const std::vector<Variant>& AllVariants();

// Not an official variant: a tiny model (depths 1-1-2-1, widths 8-16-32-64, 73 thousand
// parameters before the head) for tests that need "a model" but nothing of a real one's size.
// FindVariant accepts the name; AllVariants and VariantNamesList (--help, errors) leave it out.
inline constexpr char kTestVariant[] = "convnextv2_test";

// The variant called `name` (the official names, e.g. convnextv2_tiny, or kTestVariant);
// NotFound names the allowed ones.
absl::StatusOr<Variant> FindVariant(absl::string_view name);

// "convnextv2_atto, convnextv2_femto, ..." for error messages and --help.
std::string VariantNamesList();

}  // namespace convnextv2::models

#endif  // CONVNEXTV2_MODELS_VARIANTS_H_
