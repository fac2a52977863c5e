// `launcher status SWEEP_DIR`: one line per task with its Slurm state, run state, attempts,
// epochs done and last metrics (from the runs' manifest.pbtxt and metrics.h5).
//
//   absl::StatusOr<std::string> table = StatusTable("/home/me/sweeps/ft");
#ifndef CONVNEXTV2_LAUNCHER_STATUS_H_
#define CONVNEXTV2_LAUNCHER_STATUS_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "launcher/sweep.pb.h"

namespace convnextv2::launcher {

// Slurm state of each task index of the sweep's arrays that squeue still lists
// (PENDING, RUNNING, ...); tasks that left the queue are absent.
std::map<int, std::string> QueueStates(const SweepManifest& manifest);

// With `show_progress`, reading the runs reports progress on stderr (see progress.h).
absl::StatusOr<std::string> StatusTable(const std::string& sweep_dir, bool show_progress = false);

}  // namespace convnextv2::launcher

#endif  // CONVNEXTV2_LAUNCHER_STATUS_H_
