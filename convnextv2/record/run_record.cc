#include "convnextv2/record/run_record.h"

#include <glog/logging.h>
#include <torch/version.h>

#include <filesystem>

#include "convnextv2/record/manifest.h"
#include "convnextv2/record/run_info.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::record {

RunRecord::RunRecord(std::string program, std::string command_line)
    : program_(std::move(program)),
      command_line_(std::move(command_line)),
      start_(std::chrono::steady_clock::now()) {}

RunRecord::~RunRecord() {
  if (active() && !finished_) {
    absl::Status s = FinishWithExitStatus(1, "the run ended without reporting a result");
    if (!s.ok()) LOG(ERROR) << s;
  }
}

absl::Status RunRecord::Start(const ExperimentConfig& config, const Declaration& declaration,
                              int64_t resume_after_step) {
  dir_ = config.output().output_dir();
  if (dir_.empty()) return absl::OkStatus();
  CONVNEXTV2_RETURN_IF_ERROR(util::MakeDirs(dir_));
  RunInfo info = CollectRunInfo();
  info.library_versions["libtorch"] = TORCH_VERSION;
  const std::string manifest_path = dir_ + "/manifest.pbtxt";
  std::unique_ptr<RunManifest> previous;
  if (std::filesystem::exists(manifest_path)) {
    absl::StatusOr<RunManifest> old = ReadManifest(manifest_path);
    if (old.ok()) {
      previous = std::make_unique<RunManifest>(*old);
    } else {
      LOG(WARNING) << "ignoring the unreadable manifest of an earlier attempt: " << old.status();
    }
  }
  manifest_ = StartManifest(config, program_, command_line_, info, previous.get());
  for (const std::string& name : class_names_) manifest_.add_class_names(name);
  CONVNEXTV2_RETURN_IF_ERROR(WriteManifest(manifest_path, manifest_));
  const std::string metrics_path = dir_ + "/metrics.h5";
  const Attributes attributes = ManifestAttributes(manifest_);
  absl::StatusOr<std::unique_ptr<MetricsWriter>> writer =
      resume_after_step >= 0
          ? MetricsWriter::Resume(metrics_path, attributes, resume_after_step, declaration)
          : MetricsWriter::Create(metrics_path, attributes, declaration);
  CONVNEXTV2_RETURN_IF_ERROR(writer);
  metrics_ = std::move(*writer);
  LOG(INFO) << "recording to " << manifest_path << " and " << metrics_path << " (attempt "
            << manifest_.attempts() << ", git " << manifest_.git_commit()
            << (manifest_.git_dirty() ? " dirty" : "") << ")";
  return absl::OkStatus();
}

void RunRecord::AddTrain(const TrainRow& row) {
  if (metrics_) metrics_->AddTrain(row);
}

void RunRecord::AddEval(const EvalRow& row) {
  if (metrics_) metrics_->AddEval(row);
}

absl::Status RunRecord::Flush() { return metrics_ ? metrics_->Flush() : absl::OkStatus(); }

absl::Status RunRecord::Finish(const absl::Status& run_status) {
  return FinishWithExitStatus(run_status.ok() ? 0 : 1, std::string(run_status.message()));
}

absl::Status RunRecord::FinishWithExitStatus(int exit_status, const std::string& message) {
  if (!active() || finished_) return absl::OkStatus();
  finished_ = true;
  absl::Status flushed = metrics_->Flush();
  FinishManifest(exit_status, message, &manifest_);
  absl::Status attrs = metrics_->SetAttributes(
      {{"end_time", manifest_.end_time()}, {"exit_status", int64_t{exit_status}}});
  absl::Status written = WriteManifest(dir_ + "/manifest.pbtxt", manifest_);
  if (!flushed.ok()) return flushed;
  if (!attrs.ok()) return attrs;
  return written;
}

double RunRecord::WallTime() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

}  // namespace convnextv2::record
