// Facts about the process a run executes in, recorded in metrics.h5 and manifest.pbtxt.
//
//   RunInfo info = CollectRunInfo();                // host, Slurm ids, git, build mode, versions
//   info.library_versions["libtorch"] = TORCH_VERSION;  // added by the caller that links it
//   std::string hash = Sha256Hex(config_text);
//
// The git commit is read at RUN time (not embedded at build time, which would rebuild every
// binary on every commit): $CONVNEXTV2_GIT_COMMIT / $CONVNEXTV2_GIT_DIRTY when set (the
// launcher's sbatch scripts set them to the commit at sweep time, when the binary was copied),
// else `git rev-parse HEAD` and `git status --porcelain
// --untracked-files=no` in the first of $CONVNEXTV2_SOURCE_DIR (the launcher's sbatch scripts
// set it to the checkout the sweep was made from), $BUILD_WORKSPACE_DIRECTORY (`bazel run`) and
// the current directory that is inside a git checkout. `git_source` records which directory
// was used, so a reader can judge whether the binary was built from it. No libtorch.
#ifndef CONVNEXTV2_RECORD_RUN_INFO_H_
#define CONVNEXTV2_RECORD_RUN_INFO_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace convnextv2::record {

struct SlurmIds {
  std::string job_id;          // SLURM_JOB_ID
  std::string array_job_id;    // SLURM_ARRAY_JOB_ID
  std::string array_task_id;   // SLURM_ARRAY_TASK_ID
  std::string restart_count;   // SLURM_RESTART_COUNT: how often the job was requeued
  std::string node_list;       // SLURM_JOB_NODELIST
  std::string procid;          // SLURM_PROCID
  std::string ntasks;          // SLURM_NTASKS
};

struct RunInfo {
  std::string host;
  SlurmIds slurm;
  std::string git_commit;  // "unknown" when no checkout was found
  bool git_dirty = false;  // tracked files differ from the commit
  std::string git_source;  // "run time: git -C <dir>" or why it is unknown
  std::string build_mode;  // Bazel compilation mode of this library: opt, fastbuild or dbg
  std::string start_time;  // UTC, ISO 8601
  std::map<std::string, std::string> library_versions;  // protobuf, hdf5, abseil (+ caller's)
};

RunInfo CollectRunInfo();

// Lower-case hex SHA-256 of `data` (OpenSSL's libcrypto).
std::string Sha256Hex(absl::string_view data);

// Now in UTC as "2026-11-23T11:45:02Z".
std::string NowUtc();

// The Slurm ids of this process's environment (empty strings outside Slurm).
SlurmIds SlurmFromEnvironment();

}  // namespace convnextv2::record

#endif  // CONVNEXTV2_RECORD_RUN_INFO_H_
