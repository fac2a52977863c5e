// Where checkpoints live in output_dir, which one a run resumes from, and which are kept.
//
//   EpochPath("/run", 4)          -> "/run/checkpoint-4.pth"      (official naming)
//   StepPath("/run", 4, 120)      -> "/run/checkpoint-4-step120.pth"  (mid-epoch, on request)
//   BestPath("/run", /*ema=*/true) -> "/run/checkpoint-best-ema.pth"
//   absl::StatusOr<std::optional<Found>> f = FindNewestValid("/run");   // for auto_resume
//   PruneEpochCheckpoints("/run", /*keep=*/3);
//
// The newest checkpoint is chosen by the position recorded in its header (epoch, then step),
// not by file time or name; a candidate that is truncated or fails its checksum is skipped and
// reported, and the next older one is used.
#ifndef CONVNEXTV2_CHECKPOINT_POLICY_H_
#define CONVNEXTV2_CHECKPOINT_POLICY_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/checkpoint/file.h"

namespace convnextv2::checkpoint {

std::string EpochPath(const std::string& dir, int epoch);
std::string StepPath(const std::string& dir, int epoch, int64_t step);
std::string BestPath(const std::string& dir, bool ema);

struct Found {
  std::string path;
  Checkpoint checkpoint;
  std::vector<std::string> skipped;  // "path: why" for each newer candidate that was invalid
};

// The newest valid training checkpoint among checkpoint-<epoch>[-step<s>].pth in `dir`;
// nullopt when there is none at all (a first launch). Error when candidates exist but every
// one is invalid (the message lists why), so a run never silently restarts from scratch.
absl::StatusOr<std::optional<Found>> FindNewestValid(const std::string& dir);

// Deletes all but the newest `keep` checkpoint-<epoch>.pth files (by epoch number); returns
// the removed paths.
std::vector<std::string> PruneEpochCheckpoints(const std::string& dir, int keep);

// Deletes mid-epoch checkpoints other than `except` (they are superseded by a newer save).
std::vector<std::string> RemoveStepCheckpoints(const std::string& dir,
                                               const std::string& except = "");

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_POLICY_H_
