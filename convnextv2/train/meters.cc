#include "convnextv2/train/meters.h"

#include <ATen/ATen.h>

#include <cmath>
#include <numeric>

#include "absl/strings/str_format.h"

namespace convnextv2::train {

void MeanMeter::Add(double value, double weight) {
  sum_ += value * weight;
  weight_ += weight;
  recent_.push_back(value);
  if (static_cast<int>(recent_.size()) > window_) recent_.pop_front();
}

double MeanMeter::recent() const {
  if (recent_.empty()) return 0.0;
  return std::accumulate(recent_.begin(), recent_.end(), 0.0) / recent_.size();
}

int64_t TopKCorrect(const at::Tensor& logits, const at::Tensor& labels, int64_t k) {
  k = std::min<int64_t>(k, logits.size(1));
  const at::Tensor top = std::get<1>(logits.topk(k, /*dim=*/1));
  return top.eq(labels.view({-1, 1})).any(1).sum().item<int64_t>();
}

std::string FormatDuration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(std::max(seconds, 0.0)));
  return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
}

}  // namespace convnextv2::train
