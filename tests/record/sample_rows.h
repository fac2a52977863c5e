// Deterministic metric rows for the crash tests; check_killed_logs.py computes the same values.
#ifndef CONVNEXTV2_TESTS_METRICS_SAMPLE_ROWS_H_
#define CONVNEXTV2_TESTS_METRICS_SAMPLE_ROWS_H_

#include "convnextv2/record/metrics_log.h"

namespace convnextv2::testing {

inline record::TrainRow SampleTrainRow(int64_t step) {
  record::TrainRow r;
  r.step = step;
  r.epoch = step / 100;
  r.loss = 2.0 / (step + 1);
  r.lr = 1e-3 * step;
  r.min_lr = 1e-4 * step;
  r.class_acc = 0.5;
  r.images_per_second = 100 + step;
  r.wall_time = 0.25 * step;
  return r;  // weight_decay, grad_norm stay missing (NaN)
}

// The eval row after step `step` (every 10th step).
inline record::EvalRow SampleEvalRow(int64_t step) {
  record::EvalRow r;
  r.step = step;
  r.epoch = step / 100;
  r.acc1 = 50 + step / 10;
  r.acc5 = 90;
  r.loss = 1.0 / (step + 1);
  return r;
}

}  // namespace convnextv2::testing

#endif  // CONVNEXTV2_TESTS_METRICS_SAMPLE_ROWS_H_
