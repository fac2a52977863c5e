// `launcher sweep`: writes a sweep dir and submits it as Slurm job array(s).
//
//   SweepOptions o;
//   o.sweep_file = "/home/me/configs/ft.pbtxt";
//   o.work_dir = "/home/me";
//   absl::StatusOr<SweepResult> r = RunSweep(o);   // r->job_ids, r->sweep_dir, r->script
//
// Nothing is written when any task is invalid; nothing is submitted on --dry_run.
#ifndef CONVNEXTV2_LAUNCHER_SUBMIT_H_
#define CONVNEXTV2_LAUNCHER_SUBMIT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "launcher/sweep.pb.h"

namespace convnextv2::launcher {

struct SweepOptions {
  std::string sweep_file;    // absolute
  std::string work_dir;      // the user's directory
  std::string sweep_dir;     // empty: <work_dir>/<sweep_root>/<name>
  std::string binary;        // empty: the one built beside the launcher
  std::string command_line;  // recorded in the sweep manifest
  bool dry_run = false;
  bool force = false;
};

struct SweepResult {
  std::string sweep_dir;
  std::string script;
  int num_tasks = 0;
  std::vector<std::string> job_ids;
};

absl::StatusOr<SweepResult> RunSweep(const SweepOptions& options);

// The finetune or pretrain binary built beside the running launcher (its runfiles under
// `bazel run`, or bazel-bin/convnextv2/); NotFound says how to build it or pass --binary.
absl::StatusOr<std::string> FindBinary(const std::string& name);

// MaxArraySize of the cluster (`scontrol show config`); 1001 (Slurm's default) when unknown.
int MaxArraySize();

// Reads <sweep_dir>/sweep_manifest.pbtxt.
absl::StatusOr<SweepManifest> ReadSweepManifest(const std::string& sweep_dir);

}  // namespace convnextv2::launcher

#endif  // CONVNEXTV2_LAUNCHER_SUBMIT_H_
