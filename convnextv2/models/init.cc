#include "convnextv2/models/init.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>

namespace convnextv2::models {

void TruncNormal_(at::Tensor tensor, double mean, double std, double a, double b,
                  std::optional<at::Generator> generator) {
  c10::NoGradGuard no_grad;
  auto norm_cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  const double l = norm_cdf((a - mean) / std);
  const double u = norm_cdf((b - mean) / std);
  tensor.uniform_(2 * l - 1, 2 * u - 1,
                  generator ? c10::optional<at::Generator>(*generator) : c10::nullopt);
  tensor.erfinv_();
  tensor.mul_(std * std::sqrt(2.0));
  tensor.add_(mean);
  tensor.clamp_(a, b);
}

}  // namespace convnextv2::models
