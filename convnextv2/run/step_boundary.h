// What a training loop does at each step boundary, shared by fine-tuning and pre-training:
// decide whether the run stops here (a preemption request or the test stop point, on any rank:
// every rank stops at the same step) and write the mid-epoch checkpoint when it stops or when
// a periodic save is due.
//
//   StepBoundaries boundaries(ckpts, preemption, comm, options.stop_epoch, options.stop_step);
//   for (int64_t it = first_step; ...) {
//     if (it % update_freq == 0) {
//       absl::StatusOr<bool> stop = boundaries.Reached(epoch, it, first_step, state, meters);
//       if (!stop.ok()) return stop.status();
//       if (*stop) { ...flush logs; return preempted...; }
//     }
//     ...step...
//   }
#ifndef CONVNEXTV2_RUN_STEP_BOUNDARY_H_
#define CONVNEXTV2_RUN_STEP_BOUNDARY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "convnextv2/dist/process_group.h"
#include "convnextv2/run/preemption.h"
#include "convnextv2/run/run_checkpoints.h"

namespace convnextv2::run {

// The running sums rank `rank` of a run with `world_size` ranks resumes with, from the scalars
// of a mid-epoch checkpoint: rank 0's are stored under their own keys, rank r's under
// "rank<r>." + key. Rank 0 also takes the sums of ranks the resumed run no longer has, so the
// epoch's totals stay whole; a rank the checkpoint has no sums for starts from none.
std::map<std::string, double> RankScalars(const std::map<std::string, double>& scalars,
                                          int rank, int world_size);

class StepBoundaries {
 public:
  // `comm` is null for a single process. The run also stops (as if preempted) before batch
  // `stop_step` of epoch `stop_epoch` (tests; -1 for never).
  StepBoundaries(RunCheckpoints& ckpts, const PreemptionWatch& preemption,
                 dist::Communicator* comm, int stop_epoch, int64_t stop_step)
      : ckpts_(ckpts),
        preemption_(preemption),
        comm_(comm),
        stop_epoch_(stop_epoch),
        stop_step_(stop_step) {}

  // Call before batch `step` of `epoch` when it starts an update (accumulation) group: only
  // there is the state consistent enough to resume from exactly. `first_step` is the batch this
  // epoch started (or resumed) at: no periodic save right where the run started. `meters`
  // gives the epoch's running sums, saved with a mid-epoch checkpoint (every rank's, gathered
  // to rank 0: read them back with RankScalars). Returns true when the run must stop now; the
  // checkpoint is then written and the stop logged.
  absl::StatusOr<bool> Reached(int epoch, int64_t step, int64_t first_step, LoopState* state,
                               const std::function<std::map<std::string, double>()>& meters);

 private:
  RunCheckpoints& ckpts_;
  const PreemptionWatch& preemption_;
  dist::Communicator* comm_;
  int stop_epoch_;
  int64_t stop_step_;
};

}  // namespace convnextv2::run

#endif  // CONVNEXTV2_RUN_STEP_BOUNDARY_H_
