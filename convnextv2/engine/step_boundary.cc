#include "convnextv2/engine/step_boundary.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::engine {

absl::StatusOr<bool> StepBoundaries::Reached(
    int epoch, int64_t step, int64_t first_step, LoopState* state,
    const std::function<std::map<std::string, double>()>& meters) {
  bool stop = preemption_.requested() || (epoch == stop_epoch_ && step == stop_step_);
  if (comm_ != nullptr) {  // a signal on any rank stops all at the same step
    absl::StatusOr<bool> any = dist::AnyRank(*comm_, stop);
    CONVNEXTV2_RETURN_IF_ERROR(any);
    stop = *any;
  }
  if (!stop && (step == first_step || !ckpts_.PeriodicSaveDue(state->global_step, step))) {
    return false;
  }
  state->next_epoch = epoch;
  state->next_step = step;
  state->scalars = meters();
  CONVNEXTV2_RETURN_IF_ERROR(ckpts_.SaveMidEpoch(epoch, *state));
  if (stop) preemption_.LogStop(epoch, step);
  return stop;
}

}  // namespace convnextv2::engine
