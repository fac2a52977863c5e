// Training losses of the fine-tuning recipe (timm's, as main_finetune.py picks them).
//
//   at::Tensor loss = CrossEntropy(logits, labels, /*smoothing=*/0.1);   // int64 labels
//   at::Tensor loss = SoftTargetCrossEntropy(logits, mixed_targets);     // Mixup/CutMix targets
//
// main_finetune.py: SoftTargetCrossEntropy when Mixup/CutMix is on (label smoothing is then
// folded into the mixed targets), LabelSmoothingCrossEntropy when smoothing > 0, plain
// cross-entropy otherwise. All return the mean over the batch; logits may be lower precision
// (autocast), the loss is computed in float32.
#ifndef CONVNEXTV2_TRAIN_LOSSES_H_
#define CONVNEXTV2_TRAIN_LOSSES_H_

#include <ATen/core/Tensor.h>

namespace convnextv2::train {

// mean_i sum_c -soft_targets[i, c] * log_softmax(logits)[i, c]; soft_targets is (N, C).
at::Tensor SoftTargetCrossEntropy(const at::Tensor& logits, const at::Tensor& soft_targets);

// (1 - smoothing) * NLL(labels) + smoothing * mean_c(-log_softmax), averaged over the batch
// (timm's LabelSmoothingCrossEntropy; smoothing 0 is plain cross-entropy). labels: (N,) int64.
at::Tensor CrossEntropy(const at::Tensor& logits, const at::Tensor& labels, double smoothing = 0.0);

}  // namespace convnextv2::train

#endif  // CONVNEXTV2_TRAIN_LOSSES_H_
