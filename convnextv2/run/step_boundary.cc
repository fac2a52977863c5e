#include "convnextv2/run/step_boundary.h"

#include <ATen/ops/zeros.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::run {
namespace {

// Every rank's `mine` (the same keys on every rank) gathered by one all-reduce of a zeroed
// buffer in which each rank fills its own slot: adding zeros keeps each value exact.
absl::StatusOr<std::map<std::string, double>> GatherRankScalars(
    dist::Communicator& comm, const std::map<std::string, double>& mine) {
  const int64_t n = static_cast<int64_t>(mine.size());
  std::vector<at::Tensor> buffer{at::zeros({comm.world_size() * n}, at::kDouble)};
  double* slot = buffer[0].data_ptr<double>() + comm.rank() * n;
  for (const auto& [key, value] : mine) *slot++ = value;
  CONVNEXTV2_RETURN_IF_ERROR(comm.AllReduceSum(buffer));
  const double* all = buffer[0].data_ptr<double>();
  std::map<std::string, double> out;
  for (int r = 0; r < comm.world_size(); ++r) {
    for (const auto& [key, value] : mine) {
      out[r == 0 ? key : absl::StrCat("rank", r, ".", key)] = *all++;
    }
  }
  return out;
}

}  // namespace

std::map<std::string, double> RankScalars(const std::map<std::string, double>& scalars,
                                          int rank, int world_size) {
  std::map<std::string, double> out;
  for (const auto& [key, value] : scalars) {
    int r = 0;
    std::string name = key;
    if (absl::StartsWith(key, "rank")) {
      const size_t dot = key.find('.');
      if (dot == std::string::npos || !absl::SimpleAtoi(key.substr(4, dot - 4), &r)) continue;
      name = key.substr(dot + 1);
    }
    // Ranks the resumed run no longer has: their sums go to rank 0, so the totals stay right.
    if (r == rank || (rank == 0 && r >= world_size)) out[name] += value;
  }
  return out;
}

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
  if (comm_ != nullptr && comm_->world_size() > 1) {
    // Only rank 0 writes the checkpoint: it carries every rank's running sums.
    CONVNEXTV2_ASSIGN_OR_RETURN(state->scalars, GatherRankScalars(*comm_, state->scalars));
  }
  CONVNEXTV2_RETURN_IF_ERROR(ckpts_.SaveMidEpoch(epoch, *state));
  if (stop) preemption_.LogStop(epoch, step);
  return stop;
}

}  // namespace convnextv2::run
