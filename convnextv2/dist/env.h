// Who this process is in a data-parallel run: rank, world size, local rank, and where the
// rendezvous (the TCPStore on rank 0) listens. No libtorch here.
//
//   absl::StatusOr<DistEnv> env = ResolveDistEnv(config.distributed());
//   if (env->distributed()) ... create the process group (process_group.h) ...
//
// Sources, first match wins:
//   1. torchrun / torch.distributed.launch: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
//      MASTER_ADDR, MASTER_PORT.
//   2. Slurm (`srun`): SLURM_PROCID, SLURM_STEP_NUM_TASKS (or SLURM_NTASKS), SLURM_LOCALID,
//      SLURM_STEP_TASKS_PER_NODE / SLURM_TASKS_PER_NODE with SLURM_NODEID; the master is the first
//      host of SLURM_STEP_NODELIST / SLURM_JOB_NODELIST (MASTER_ADDR overrides) on a port derived
//      from SLURM_JOB_ID (MASTER_PORT overrides), so every task of a job agrees without talking.
//   3. Neither: a single process (rank 0 of 1).
// distributed.dist_url "tcp://host:port" overrides the master address and port of 1 and 2;
// "env://" (the default) takes them from the environment as above.
#ifndef CONVNEXTV2_DIST_ENV_H_
#define CONVNEXTV2_DIST_ENV_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::dist {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  // processes on this node
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single process";  // "torchrun environment", "Slurm", ...
  bool distributed() const { return world_size > 1; }
  std::string Describe() const;  // one line for the log
};

// Reads a variable; nullopt when unset. Tests pass a map instead of the process environment.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
EnvLookup ProcessEnvironment();

absl::StatusOr<DistEnv> ResolveDistEnv(const DistributedConfig& config, const EnvLookup& env);
absl::StatusOr<DistEnv> ResolveDistEnv(const DistributedConfig& config);

// Expands a Slurm hostlist ("n[01-03,7],gpu5") to host names, in order.
absl::StatusOr<std::vector<std::string>> ExpandHostlist(absl::string_view hostlist);

// Per-node task counts of a Slurm tasks-per-node string ("2(x3),1" -> 2,2,2,1).
absl::StatusOr<std::vector<int>> ExpandTasksPerNode(absl::string_view tasks_per_node);

// The rendezvous port of a Slurm job: 15000 + job_id % 20000, so concurrent jobs on a node
// rarely collide and every task computes the same one.
int PortForJob(int64_t job_id);

}  // namespace convnextv2::dist

#endif  // CONVNEXTV2_DIST_ENV_H_
