// `launcher reproduce RUN_DIR`: runs a recorded run again and compares the two metric logs;
// `launcher compare RUN_A RUN_B` compares two runs' logs.
//
//   absl::StatusOr<ReproduceResult> r = Reproduce({.run_dir = "sweeps/ft/runs/task_000"});
//   if (r.ok() && r->differences.empty()) ...   // bitwise equal (expected on CPU)
//
// The config comes from RUN_DIR/manifest.pbtxt (the resolved config the run used); only its
// output_dir changes (default RUN_DIR.reproduced). Timing columns (those the tasks' declarations
// mark timing: e.g. images_per_second, wall_time) are not compared; every other value must
// be bitwise equal, and a column only one log has is a difference ("train column x only in A").
#ifndef CONVNEXTV2_LAUNCHER_REPRODUCE_H_
#define CONVNEXTV2_LAUNCHER_REPRODUCE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/record/metrics_log.h"
#include "convnextv2/util/progress.h"

namespace convnextv2::launcher {

struct ReproduceOptions {
  std::string run_dir;  // absolute
  std::string out_dir;  // empty: <run_dir>.reproduced
  std::string binary;   // empty: the recorded program built beside the launcher
  bool show_progress = false;  // the rerun's progress on stderr (see progress.h)
};

struct ReproduceResult {
  std::string out_dir;
  size_t train_rows = 0;
  size_t eval_rows = 0;
  std::vector<std::string> differences;  // empty when the logs agree
};

absl::StatusOr<ReproduceResult> Reproduce(const ReproduceOptions& options);

// Runs `command` (a training binary whose output goes to `log_path`) and meanwhile reports its
// progress from the log's MetricLogger lines ("Epoch: [e]  [i/n]"): steps done of epochs
// [start_epoch, epochs), the epoch in the detail. `progress` may be null. Returns the
// command's exit status.
int RunWatchingLog(const std::string& command, const std::string& log_path, int start_epoch,
                   int epochs, util::Progress* progress);

// `launcher compare RUN_A RUN_B`: the two runs' metrics.h5 compared as Reproduce does (out_dir
// is RUN_B; the row counts are RUN_A's), e.g. a requeued run against an uninterrupted one.
absl::StatusOr<ReproduceResult> CompareRuns(const std::string& run_a, const std::string& run_b);

// Row-by-row comparison of two logs, timing columns excluded; NaN equals NaN. Returns up to
// `max_differences` descriptions ("train row 3 (step 3): loss 0.5 != 0.50000000000000011",
// "train column optimizer_step only in B").
std::vector<std::string> CompareLogs(const record::MetricsLog& a, const record::MetricsLog& b,
                                     int max_differences = 10);

// The log.txt at `path` without the keys of timing columns (record::TimingLogKeys), one JSON
// object per line: what two runs' logs are compared by (`launcher log_without_timing`).
absl::StatusOr<std::string> LogWithoutTiming(const std::string& path);

}  // namespace convnextv2::launcher

#endif  // CONVNEXTV2_LAUNCHER_REPRODUCE_H_
