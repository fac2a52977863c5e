// The forward pass for inference (`predict`, //tools/bench:infer_bench): the model in eval mode,
// no autograd state at all (c10::InferenceMode: no graph, no version counters), float32 or
// under bfloat16 autocast on the CPU. Tests hold its logits equal to those of the fine-tuning
// evaluation's path (eval mode under NoGradGuard).
//
//   at::Tensor logits = InferenceLogits(model, images, /*bf16=*/false);   // (N, classes) float
#ifndef CONVNEXTV2_APPS_INFERENCE_H_
#define CONVNEXTV2_APPS_INFERENCE_H_

#include <ATen/core/Tensor.h>

#include "convnextv2/models/convnextv2.h"

namespace convnextv2::apps {

// Puts `model` in eval mode and returns float32 logits of `images` (N, 3, S, S float, on the
// model's device); with `bf16` the pass runs under autocast (bfloat16; the logits are
// converted back to float32).
at::Tensor InferenceLogits(models::ConvNeXtV2& model, const at::Tensor& images, bool bf16);

}  // namespace convnextv2::apps

#endif  // CONVNEXTV2_APPS_INFERENCE_H_
