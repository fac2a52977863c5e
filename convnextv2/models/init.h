// Weight initialization as timm does it (the official code's trunc_normal_).
#ifndef CONVNEXTV2_MODELS_INIT_H_
#define CONVNEXTV2_MODELS_INIT_H_

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <optional>

namespace convnextv2::models {

// Fills `tensor` in place with N(mean, std) truncated to the absolute bounds [a, b] (timm's
// trunc_normal_: inverse-CDF sampling, so a and b are values, not multiples of std). Draws from
// `generator`, or torch's default generator when none is given.
void TruncNormal_(at::Tensor tensor, double mean, double std, double a = -2.0, double b = 2.0,
                  std::optional<at::Generator> generator = std::nullopt);

}  // namespace convnextv2::models

#endif  // CONVNEXTV2_MODELS_INIT_H_
