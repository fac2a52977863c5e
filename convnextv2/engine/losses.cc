#include "convnextv2/engine/losses.h"

#include <ATen/ATen.h>

namespace convnextv2::engine {

at::Tensor SoftTargetCrossEntropy(const at::Tensor& logits, const at::Tensor& soft_targets) {
  return (-soft_targets * at::log_softmax(logits, -1)).sum(-1).mean();
}

}  // namespace convnextv2::engine
