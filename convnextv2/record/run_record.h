// What a training run records about itself in its output dir: manifest.pbtxt and metrics.h5.
//
//   RunRecord record("finetune", command_line);
//   absl::Status s = record.Start(config, task_record.declaration);  // manifest + metrics.h5
//   record.AddTrain(row);                         // a TrainRow of that declaration
//   s = record.Flush();                           // every epoch
//   s = record.Finish(run_status);                // end time, exit status, final state
//
// Does nothing (and fails nothing) when the config's output_dir is empty. A restart into an
// output dir with a manifest counts as another attempt. Only rank 0 should record.
#ifndef CONVNEXTV2_RECORD_RUN_RECORD_H_
#define CONVNEXTV2_RECORD_RUN_RECORD_H_

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "convnextv2/record/metrics_log.h"
#include "convnextv2/proto/experiment.pb.h"
#include "convnextv2/proto/run_manifest.pb.h"

namespace convnextv2::record {

class RunRecord {
 public:
  RunRecord(std::string program, std::string command_line);
  ~RunRecord();

  // Writes output_dir/manifest.pbtxt and creates output_dir/metrics.h5. With
  // resume_after_step >= 0 (a run resumed from a checkpoint taken after that step) the existing
  // metrics.h5 keeps its rows up to that step instead of being replaced. Rows are of
  // `declaration` (see task_records.h).
  absl::Status Start(const ExperimentConfig& config, const Declaration& declaration,
                     int64_t resume_after_step = -1);
  // The classes' names for manifest.pbtxt (RunManifest.class_names); call before Start.
  void SetClassNames(std::vector<std::string> names) { class_names_ = std::move(names); }
  void AddTrain(const TrainRow& row);
  void AddEval(const EvalRow& row);
  absl::Status Flush();
  // Exit status 0 for OK, 1 for an error; see FinishWithExitStatus for others (75: requeue).
  absl::Status Finish(const absl::Status& run_status);
  absl::Status FinishWithExitStatus(int exit_status, const std::string& message);
  // Seconds since this object was made.
  double WallTime() const;
  bool active() const { return metrics_ != nullptr; }
  const RunManifest& manifest() const { return manifest_; }

 private:
  std::string program_, command_line_, dir_;
  std::chrono::steady_clock::time_point start_;
  RunManifest manifest_;
  std::unique_ptr<MetricsWriter> metrics_;
  bool finished_ = false;
  std::vector<std::string> class_names_;
};

}  // namespace convnextv2::record

#endif  // CONVNEXTV2_RECORD_RUN_RECORD_H_
