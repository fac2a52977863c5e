// The ranks of a data-parallel job as child processes of this very binary on localhost, for the
// tests and benchmarks that re-run themselves as workers (Gloo over loopback):
//
//   absl::StatusOr<std::vector<pid_t>> pids =
//       SpawnLocalRanks({0, 1}, /*world=*/2, {"--role=worker"}, CurrentEnvironment());
//   for (pid_t pid : *pids) ok &= WaitExitStatus(pid) == 0;
#ifndef CONVNEXTV2_DIST_LOCAL_RANKS_H_
#define CONVNEXTV2_DIST_LOCAL_RANKS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace convnextv2::dist {

// A TCP port on 127.0.0.1 that was free a moment ago.
absl::StatusOr<int> FreeLoopbackPort();

// This process's environment, NAME=VALUE per entry.
std::vector<std::string> CurrentEnvironment();

// Starts /proc/self/exe once for each rank in `ranks` (a job of `world` ranks; a test may leave
// some out) with the arguments `args` and the environment `env` plus RANK, WORLD_SIZE,
// MASTER_ADDR=127.0.0.1 and a free MASTER_PORT, the same for all. Returns the pids in the order of
// `ranks`; if one cannot be started, those already started are killed and the error names it.
absl::StatusOr<std::vector<pid_t>> SpawnLocalRanks(const std::vector<int>& ranks, int world,
                                                   const std::vector<std::string>& args,
                                                   const std::vector<std::string>& env);

// Waits for `pid`: its exit status, or 128 + the signal that ended it.
int WaitExitStatus(pid_t pid);

}  // namespace convnextv2::dist

#endif  // CONVNEXTV2_DIST_LOCAL_RANKS_H_
