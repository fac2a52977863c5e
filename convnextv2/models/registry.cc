#include "convnextv2/models/registry.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::models {

absl::StatusOr<ConvNeXtV2Options> VariantOptions(absl::string_view name) {
  absl::StatusOr<Variant> v = FindVariant(name);
  CONVNEXTV2_RETURN_IF_ERROR(v);
  return ConvNeXtV2Options()
      .depths({v->depths.begin(), v->depths.end()})
      .dims({v->dims.begin(), v->dims.end()});
}

absl::StatusOr<ConvNeXtV2> CreateConvNeXtV2(absl::string_view name, int64_t num_classes,
                                            double drop_path_rate, double head_init_scale) {
  absl::StatusOr<ConvNeXtV2Options> options = VariantOptions(name);
  CONVNEXTV2_RETURN_IF_ERROR(options);
  return ConvNeXtV2(options->num_classes(num_classes)
                        .drop_path_rate(drop_path_rate)
                        .head_init_scale(head_init_scale));
}

}  // namespace convnextv2::models
