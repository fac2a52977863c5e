#include "convnextv2/train/losses.h"

#include <ATen/ATen.h>

namespace convnextv2::train {

at::Tensor SoftTargetCrossEntropy(const at::Tensor& logits, const at::Tensor& soft_targets) {
  TORCH_CHECK(logits.dim() == 2 && soft_targets.sizes() == logits.sizes(),
              "SoftTargetCrossEntropy: logits ", logits.sizes(), " and targets ",
              soft_targets.sizes(), " must both be (N, C)");
  const at::Tensor log_probs = at::log_softmax(logits.to(at::kFloat), /*dim=*/-1);
  return (-soft_targets.to(at::kFloat) * log_probs).sum(-1).mean();
}

at::Tensor CrossEntropy(const at::Tensor& logits, const at::Tensor& labels, double smoothing) {
  TORCH_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
              "CrossEntropy: logits ", logits.sizes(), " and labels ", labels.sizes(),
              " must be (N, C) and (N)");
  const at::Tensor log_probs = at::log_softmax(logits.to(at::kFloat), /*dim=*/-1);
  const at::Tensor nll = -log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1);
  if (smoothing == 0.0) return nll.mean();
  const at::Tensor uniform = -log_probs.mean(-1);
  return ((1.0 - smoothing) * nll + smoothing * uniform).mean();
}

}  // namespace convnextv2::train
