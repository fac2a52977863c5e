#include "convnextv2/apps/evaluate.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <glog/logging.h>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "convnextv2/train/amp.h"
#include "convnextv2/train/meters.h"
#include "convnextv2/util/fault_points.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::apps {
namespace {

// engine_finetune.py's evaluate() progress (its MetricLogger.log_every(data_loader, 10)):
//   Test:  [ 10/157]  eta: 0:00:12  loss: 0.5432 (0.6120)  acc1: 87.500 (85.938)  ...
// every 10 batches and at the last, then the total time. Figures of this rank's shard: the
// last batch's, then the running mean.
class EvalProgress {
 public:
  explicit EvalProgress(int64_t batches) : batches_(batches) {}

  void Batch(int64_t b, double loss, double acc1, double acc5, int64_t n) {
    const double seconds = Seconds(last_);
    last_ = Clock::now();
    time_.Add(seconds);
    loss_.Add(loss, n);
    acc1_.Add(acc1, n);
    acc5_.Add(acc5, n);
    if (b % 10 != 0 && b + 1 != batches_) return;
    LOG(INFO) << absl::StrFormat(
        "Test:  [%*d/%d]  eta: %s  loss: %.4f (%.4f)  acc1: %.3f (%.3f)  acc5: %.3f (%.3f)  "
        "time: %.4f",
        static_cast<int>(std::to_string(batches_).size()), b, batches_,
        train::FormatDuration(time_.recent() * static_cast<double>(batches_ - b - 1)), loss,
        loss_.mean(), acc1, acc1_.mean(), acc5, acc5_.mean(), seconds);
  }
  void Finish() const {
    if (batches_ == 0) return;
    const double total = Seconds(start_);
    LOG(INFO) << absl::StrFormat("Test: Total time: %s (%.4f s / it)", train::FormatDuration(total),
                                 total / static_cast<double>(batches_));
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double Seconds(Clock::time_point since) {
    return std::chrono::duration<double>(Clock::now() - since).count();
  }
  int64_t batches_;
  Clock::time_point start_ = Clock::now(), last_ = start_;
  train::MeanMeter time_, loss_, acc1_, acc5_;
};

}  // namespace

absl::StatusOr<EvalStats> Evaluate(models::ConvNeXtV2& model, const data::Loader& loader,
                                   c10::Device device, const train::TrainingRecipe& recipe,
                                   dist::Communicator* comm) {
  c10::NoGradGuard no_grad;
  model->eval();
  EvalStats stats;
  double loss_sum = 0;
  int64_t correct1 = 0, correct5 = 0;
  data::BatchIterator batches = loader.Iterate(/*epoch=*/0);
  EvalProgress progress(loader.num_batches());
  for (int64_t b = 0; b < loader.num_batches(); ++b) {
    util::FaultPoint("eval_batch");
    CONVNEXTV2_ASSIGN_OR_RETURN(const data::Batch batch, batches.Next());
    at::Tensor images = batch.images;
    at::Tensor labels = batch.labels;
    std::vector<int64_t> keep;
    for (size_t i = 0; i < batch.padding.size(); ++i) {
      if (!batch.padding[i]) keep.push_back(static_cast<int64_t>(i));
    }
    if (keep.empty()) continue;
    if (keep.size() != static_cast<size_t>(labels.size(0))) {
      const at::Tensor index = at::tensor(keep, at::kLong);
      images = images.index_select(0, index);
      labels = labels.index_select(0, index);
    }
    images = images.to(device, /*non_blocking=*/loader.pinned());
    labels = labels.to(device);
    at::Tensor logits;
    {
      train::AutocastGuard autocast = recipe.Autocast();  // the official evaluate(use_amp=...)
      logits = model->forward(images).to(at::kFloat);
    }
    const int64_t n = labels.size(0);
    const double loss = at::cross_entropy_loss(logits, labels).item<double>();
    const int64_t c1 = train::TopKCorrect(logits, labels, 1);
    const int64_t c5 = train::TopKCorrect(logits, labels, 5);
    loss_sum += loss * n;
    correct1 += c1;
    correct5 += c5;
    stats.samples += n;
    progress.Batch(b, loss, 100.0 * c1 / n, 100.0 * c5 / n, n);
  }
  progress.Finish();
  if (comm != nullptr) {
    std::vector<at::Tensor> sums{at::tensor(
        {loss_sum, static_cast<double>(correct1), static_cast<double>(correct5),
         static_cast<double>(stats.samples)},
        at::kDouble)};
    CONVNEXTV2_RETURN_IF_ERROR(comm->AllReduceSum(sums));
    const at::Tensor& host = sums[0];
    loss_sum = host[0].item<double>();
    correct1 = static_cast<int64_t>(std::llround(host[1].item<double>()));
    correct5 = static_cast<int64_t>(std::llround(host[2].item<double>()));
    stats.samples = static_cast<int64_t>(std::llround(host[3].item<double>()));
  }
  if (stats.samples > 0) {
    stats.acc1 = 100.0 * correct1 / stats.samples;
    stats.acc5 = 100.0 * correct5 / stats.samples;
    stats.loss = loss_sum / stats.samples;
  }
  return stats;
}

}  // namespace convnextv2::apps
