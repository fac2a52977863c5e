// Fault injection at named points, a debugging aid for crash and disk-full testing.
//
//   util::FaultPoint("checkpoint_between_files");      // may SIGKILL the process, or sleep
//   if (int e = util::FaultWriteErrno("atomic_write")) errno = e;  // ... and fail the write
//
// Nothing happens unless the environment asks for it; unset, a point costs one relaxed atomic
// load. The environment is read once, on the first point reached:
//
//   CONVNEXTV2_FAULT=NAME:N[,NAME:N...]   SIGKILL the process the Nth time (1-based) NAME is
//                                         reached. NAME `*` counts every point together, so
//                                         `*:40` kills at the 40th point of any name.
//   CONVNEXTV2_FAULT_STOP=NAME:N[,...]    SIGSTOP the process there instead: it stays frozen
//                                         mid-operation (its sockets open, its files as they
//                                         are) until SIGCONT or SIGKILL, so a test can take its
//                                         host down at that instant (a power loss closes no
//                                         socket and finishes no write).
//   CONVNEXTV2_FAULT_ERRNO=NAME:N[+][:ERR][,...]
//                                         FaultWriteErrno(NAME) returns ERR (ENOSPC unless given:
//                                         ENOSPC, EIO, EDQUOT, EROFS) the Nth time, or from the
//                                         Nth time on with `+` (a disk that stays full).
//   CONVNEXTV2_FAULT_DELAY_SEED=S         every point first sleeps a pseudo-random time drawn
//                                         from (S, NAME, occurrence), so a run with the same seed
//                                         sleeps the same way (shifts the instant of an external
//                                         kill into different code);
//   CONVNEXTV2_FAULT_DELAY_MAX_US=U       ... of at most U microseconds (default 20000).
//   CONVNEXTV2_FAULT_TRACE=1              print "fault point NAME #N" to stderr at every point.
// A malformed value prints what is wrong and exits with status 2. Occurrences are counted per
// process across threads.
//
// Points in the toolkit (grep FaultPoint): atomic_write (before the data is written; also where
// its write fails), atomic_rename (after the fsync, before the rename) in util/files, and
// hdf5_write (after each dataset of a metrics.h5 image is built, and once the image is
// complete, before it is written) in metrics/metrics_log; train_step (after a micro-batch's
// backward and optimizer work, before its row is recorded) and log_append (before a log.txt row
// is appended) in run/loop; eval_batch (before each evaluation batch) in apps/finetune;
// save_between_files (after a training checkpoint's rename, before superseded checkpoints are
// removed) in run/run_checkpoints.
#ifndef CONVNEXTV2_UTIL_FAULT_POINTS_H_
#define CONVNEXTV2_UTIL_FAULT_POINTS_H_

#include <atomic>
#include <cstdint>

namespace convnextv2::util {

namespace fault_internal {
// 0: environment not read yet, 1: no faults configured, 2: configured.
extern std::atomic<int> state;
void Reach(const char* name, int* errno_out);
}  // namespace fault_internal

// Reaches the point `name`: may sleep (delay seed), SIGKILL the process (CONVNEXTV2_FAULT) or
// stop it (CONVNEXTV2_FAULT_STOP).
inline void FaultPoint(const char* name) {
  if (fault_internal::state.load(std::memory_order_relaxed) == 1) return;
  fault_internal::Reach(name, nullptr);
}

// Reaches the point `name` (as FaultPoint) and returns the errno a write there must fail with,
// or 0. Call it where the real write's failure is handled, so the injected failure takes the
// same error path.
inline int FaultWriteErrno(const char* name) {
  if (fault_internal::state.load(std::memory_order_relaxed) == 1) return 0;
  int e = 0;
  fault_internal::Reach(name, &e);
  return e;
}

// Reads the environment again and resets every count (tests that setenv between cases).
void ReloadFaultConfig();

// The delay (microseconds) the point `name` sleeps at its `occurrence`th reach under the
// configured CONVNEXTV2_FAULT_DELAY_SEED; 0 without one.
int64_t FaultDelayMicros(const char* name, int64_t occurrence);

// How many times `name` was reached since the configuration was read (0 when faults are off:
// only counted when something is configured).
int64_t FaultPointCount(const char* name);

}  // namespace convnextv2::util

#endif  // CONVNEXTV2_UTIL_FAULT_POINTS_H_
