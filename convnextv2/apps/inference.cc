#include "convnextv2/apps/inference.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "convnextv2/train/amp.h"

namespace convnextv2::apps {

at::Tensor InferenceLogits(models::ConvNeXtV2& model, const at::Tensor& images, bool bf16) {
  model->eval();
  c10::InferenceMode inference;
  train::AutocastGuard autocast(images.device().type(), at::kBFloat16, bf16);
  return model->forward(images).to(at::kFloat);
}

}  // namespace convnextv2::apps
