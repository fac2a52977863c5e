// Deterministic metric rows for the crash tests; check_killed_logs.py computes the same values.
#ifndef CONVNEXTV2_TESTS_METRICS_SAMPLE_ROWS_H_
#define CONVNEXTV2_TESTS_METRICS_SAMPLE_ROWS_H_

#include <string>

#include "convnextv2/record/metrics_log.h"
#include "convnextv2/record/task_records.h"

namespace convnextv2::testing {

// The declaration the crash tests write (fine-tuning's).
inline const record::Declaration& SampleDeclaration() {
  static const auto* r = new record::FinetuneRecord(record::MakeFinetuneRecord({}));
  return r->declaration;
}

inline record::NamedValues SampleTrainRow(int64_t step) {
  return {{"step", step},
          {"epoch", step / 100},
          {"loss", 2.0 / (step + 1)},
          {"lr", 1e-3 * step},
          {"min_lr", 1e-4 * step},
          {"class_acc", 0.5},
          {"images_per_second", 100 + step},
          {"wall_time", 0.25 * step}};  // weight_decay, grad_norm stay missing (NaN)
}

// The eval row after step `step` (every 10th step).
inline record::NamedValues SampleEvalRow(int64_t step) {
  return {{"step", step},
          {"epoch", step / 100},
          {"acc1", 50 + step / 10},
          {"acc5", 90},
          {"loss", 1.0 / (step + 1)}};
}

// The value of `name` in a sample row.
inline double SampleValue(const record::NamedValues& row, const std::string& name) {
  for (const auto& [n, v] : row) {
    if (n == name) return v;
  }
  return record::kMissing;
}

}  // namespace convnextv2::testing

#endif  // CONVNEXTV2_TESTS_METRICS_SAMPLE_ROWS_H_
