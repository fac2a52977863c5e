// Builds models by their official names.
//
//   absl::StatusOr<ConvNeXtV2> m = CreateConvNeXtV2("convnextv2_atto", /*num_classes=*/10);
#ifndef CONVNEXTV2_MODELS_REGISTRY_H_
#define CONVNEXTV2_MODELS_REGISTRY_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/models/convnextv2.h"
#include "convnextv2/models/variants.h"

namespace convnextv2::models {

// Options of the variant `name` (depths, dims), other fields at their defaults.
absl::StatusOr<ConvNeXtV2Options> VariantOptions(absl::string_view name);

absl::StatusOr<ConvNeXtV2> CreateConvNeXtV2(absl::string_view name, int64_t num_classes,
                                            double drop_path_rate = 0.0,
                                            double head_init_scale = 1.0);

}  // namespace convnextv2::models

#endif  // CONVNEXTV2_MODELS_REGISTRY_H_
