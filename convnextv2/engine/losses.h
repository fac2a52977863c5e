// Training losses.
//
//   at::Tensor loss = SoftTargetCrossEntropy(logits, targets);   // targets: (N, K) rows sum to 1
#ifndef CONVNEXTV2_ENGINE_LOSSES_H_
#define CONVNEXTV2_ENGINE_LOSSES_H_

#include <ATen/core/Tensor.h>

namespace convnextv2::engine {

// timm's SoftTargetCrossEntropy: mean over the batch of -sum_k t_k log softmax(logits)_k.
at::Tensor SoftTargetCrossEntropy(const at::Tensor& logits, const at::Tensor& soft_targets);

}  // namespace convnextv2::engine

#endif  // CONVNEXTV2_ENGINE_LOSSES_H_
