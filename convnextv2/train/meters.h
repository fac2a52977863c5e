// Running statistics of a training or evaluation loop, as the official MetricLogger keeps them.
//
//   MeanMeter loss;  loss.Add(0.7, /*weight=*/128);  loss.mean();
//   int64_t correct = TopKCorrect(logits, labels, 5);
#ifndef CONVNEXTV2_TRAIN_METERS_H_
#define CONVNEXTV2_TRAIN_METERS_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <deque>
#include <string>

namespace convnextv2::train {

// Weighted global average plus the average of the last `window` values (for progress lines).
class MeanMeter {
 public:
  explicit MeanMeter(int window = 20) : window_(window) {}
  void Add(double value, double weight = 1.0);
  double mean() const { return weight_ > 0 ? sum_ / weight_ : 0.0; }
  double recent() const;
  double last() const { return recent_.empty() ? 0.0 : recent_.back(); }
  double count() const { return weight_; }
  double sum() const { return sum_; }
  // Continues from a saved (sum, count) so a resumed epoch reports the same mean.
  void Restore(double sum, double weight) {
    sum_ = sum;
    weight_ = weight;
  }

 private:
  int window_;
  double sum_ = 0, weight_ = 0;
  std::deque<double> recent_;
};

// Number of rows whose label is among the k largest logits (k is capped at the class count).
int64_t TopKCorrect(const at::Tensor& logits, const at::Tensor& labels, int64_t k);

// "1:02:03" for seconds.
std::string FormatDuration(double seconds);

}  // namespace convnextv2::train

#endif  // CONVNEXTV2_TRAIN_METERS_H_
