// "Save, then stop": SIGTERM (always) and the configured preemption signal set a flag that the
// training loop checks at step boundaries; the run then saves a mid-epoch checkpoint and the
// binary exits with kExitRequeue, which the Slurm launcher requeues on.
//
//   PreemptionWatch watch(SIGUSR2);            // installs handlers, restores them when destroyed
//   for (...) { if (watch.requested()) { save(); return kExitRequeue; } step(); }
#ifndef CONVNEXTV2_ENGINE_PREEMPTION_H_
#define CONVNEXTV2_ENGINE_PREEMPTION_H_

#include <csignal>
#include <cstdint>

namespace convnextv2::engine {

// EX_TEMPFAIL: "stopped on a signal after saving a checkpoint; requeue me".
inline constexpr int kExitRequeue = 75;

class PreemptionWatch {
 public:
  // Watches SIGTERM and `extra_signal` (0 for none). One watch at a time per process.
  explicit PreemptionWatch(int extra_signal);
  ~PreemptionWatch();
  PreemptionWatch(const PreemptionWatch&) = delete;
  PreemptionWatch& operator=(const PreemptionWatch&) = delete;

  bool requested() const;
  // The signal that arrived first (0 if none).
  int signal() const;
  // Logs that the run stops before batch `step` of `epoch` (on the signal, or as a test asked).
  void LogStop(int epoch, int64_t step) const;

 private:
  int extra_signal_;
  struct sigaction old_term_ {}, old_extra_ {};
};

}  // namespace convnextv2::engine

#endif  // CONVNEXTV2_ENGINE_PREEMPTION_H_
