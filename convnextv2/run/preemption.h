// "Save, then stop": SIGTERM (always) and the configured preemption signal set a flag that the
// training loop checks at step boundaries; the run then saves a mid-epoch checkpoint and the
// binary exits with kExitRequeue, which the Slurm launcher requeues on. Under Slurm the run also
// stops that way when the job's time limit is near (checkpoint.preempt_lead_seconds), for
// clusters that send no warning signal.
//
//   PreemptionWatch watch(SIGUSR2, dist::TimeLimit::FromSlurm(300));  // restores handlers
//   for (...) { if (watch.requested()) { save(); return kExitRequeue; } step(); }
#ifndef CONVNEXTV2_RUN_PREEMPTION_H_
#define CONVNEXTV2_RUN_PREEMPTION_H_

#include <csignal>
#include <cstdint>

#include "convnextv2/dist/time_limit.h"

namespace convnextv2::run {

// EX_TEMPFAIL: "stopped on a signal after saving a checkpoint; requeue me".
inline constexpr int kExitRequeue = 75;

class PreemptionWatch {
 public:
  // Watches SIGTERM and `extra_signal` (0 for none), and `limit`. One watch at a time per
  // process.
  explicit PreemptionWatch(int extra_signal, dist::TimeLimit limit = {});
  ~PreemptionWatch();
  PreemptionWatch(const PreemptionWatch&) = delete;
  PreemptionWatch& operator=(const PreemptionWatch&) = delete;

  // Asked at every step boundary: true once a watched signal arrived, or once the time limit is
  // near and this is not the first boundary of the process (a run that cannot do one step
  // before the limit would otherwise be requeued forever without progress).
  bool requested() const;
  // The signal that arrived first (0 if none).
  int signal() const;
  // Logs that the run stops before batch `step` of `epoch` (on the signal, or as a test asked).
  void LogStop(int epoch, int64_t step) const;

 private:
  int extra_signal_;
  dist::TimeLimit limit_;
  mutable int64_t boundaries_ = 0;
  mutable bool by_time_ = false;
  struct sigaction old_term_ {}, old_extra_ {};
};

}  // namespace convnextv2::run

#endif  // CONVNEXTV2_RUN_PREEMPTION_H_
