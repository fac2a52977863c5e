// Sweeps: expanding a SweepConfig into validated ExperimentConfigs and a Slurm array script.
//
//   absl::StatusOr<SweepConfig> sweep = LoadSweep("configs/ft.pbtxt");
//   absl::StatusOr<std::vector<SweepPoint>> points =
//       ExpandSweep(*sweep, {.sweep_file_dir = "configs", .work_dir = cwd, .sweep_dir = dir});
//   std::string script = SbatchScript(*sweep, dir, dir + "/bin/finetune", points->size(), src);
//
// Every point is validated with the binaries' own config::Validate and CheckPaths, so nothing
// is submitted that a task would refuse at start. No libtorch.
#ifndef CONVNEXTV2_LAUNCHER_SWEEP_H_
#define CONVNEXTV2_LAUNCHER_SWEEP_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/config/config.h"
#include "launcher/sweep.pb.h"

namespace convnextv2::launcher {

struct SweepPoint {
  int index = 0;
  std::string name;                      // task_NNN
  std::vector<std::string> assignments;  // "optim.blr=2e-3", ..., "train.seed=1"
  int64_t seed = 0;
  ExperimentConfig config;               // resolved: defaults + base + axes + seed + output_dir
};

struct ExpandOptions {
  std::string sweep_file_dir;  // base_config_path is relative to this
  std::string work_dir;        // relative paths inside configs resolve against this
  std::string sweep_dir;       // task i runs in <sweep_dir>/runs/task_NNN
  bool check_paths = true;     // also run config::CheckPaths (the data exists)
};

// Reads a SweepConfig text file; errors name the file, line and column.
absl::StatusOr<SweepConfig> LoadSweep(const std::string& path);

// The binary's mode (which defaults and validation apply).
config::Mode SweepMode(const SweepConfig& sweep);

// Expands the axes (grid or zip) and repeats into points and validates each. Errors name the
// axis (index and field) or the task and its assignments; all problems are reported at once.
absl::StatusOr<std::vector<SweepPoint>> ExpandSweep(const SweepConfig& sweep,
                                                    const ExpandOptions& options);

// "task_007".
std::string TaskName(int index);

// The sbatch script of the sweep: an array over all tasks (0-(N-1)%max_parallel), one log per
// task (%A_%a), --signal, --requeue, srun of `binary` with the task's config, and a requeue
// when the binary exits 75. CONVNEXTV2_TASK_OFFSET (set on sbatch's command line when a sweep
// is split into several arrays) shifts the task index.
// `git_commit`/`git_dirty` (of the checkout when the sweep was written) are exported for the
// tasks' manifests.
std::string SbatchScript(const SweepConfig& sweep, const std::string& sweep_dir,
                         const std::string& binary, int num_tasks, const std::string& source_dir,
                         const std::string& git_commit = "", bool git_dirty = false);

// (first task, number of tasks) of each array when at most max_array_size fit in one.
std::vector<std::pair<int, int>> SplitArrays(int num_tasks, int max_array_size);

// The array spec of `count` tasks: "0-(count-1)" plus "%max_parallel" when throttled.
std::string ArraySpec(int count, int max_parallel);

}  // namespace convnextv2::launcher

#endif  // CONVNEXTV2_LAUNCHER_SWEEP_H_
