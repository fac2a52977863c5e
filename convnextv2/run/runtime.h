// Process-wide settings a run starts with: rank and process group, device, intra-op threads,
// the global seed.
//
//   absl::StatusOr<Runtime> rt = SetUpRuntime(config);   // rendezvous, device, threads, RNG
//   model->to(rt->device);
//   if (rt->comm) ... data-parallel: broadcast weights, all-reduce gradients ...
#ifndef CONVNEXTV2_RUN_RUNTIME_H_
#define CONVNEXTV2_RUN_RUNTIME_H_

#include <c10/core/Device.h>

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "convnextv2/dist/env.h"
#include "convnextv2/dist/process_group.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::run {

// train.device: "cpu", "cuda", "cuda:N", or "" for cuda when available and cpu otherwise.
// "cuda" in a multi-process run means cuda:<local rank> (one GPU per process). Asking for cuda
// without a CUDA build or GPU, or more processes on a node than it has GPUs, is an error that
// says so.
absl::StatusOr<c10::Device> ResolveDevice(const ExperimentConfig& config,
                                          const dist::DistEnv& env = {});

// Sets torch's intra-op threads to train.num_threads, or when 0 to the CPUs this process may
// run on (its affinity mask, which respects containers and Slurm's cpus_per_task), shared among
// the processes on this node when they all see every CPU. Returns it.
int ConfigureThreads(const ExperimentConfig& config, const dist::DistEnv& env = {});

// What a training run sets up before anything else.
struct Runtime {
  c10::Device device{c10::kCPU};
  int threads = 1;
  int rank = 0;
  int world_size = 1;
  uint64_t seed = 0;  // train.seed + rank, given to at::manual_seed
  dist::DistEnv env;
  // The process group of a multi-process run; null for a single process.
  std::shared_ptr<dist::Communicator> comm;
  bool writer() const { return rank == 0; }  // only rank 0 writes checkpoints, logs, metrics
};

// ResolveDevice + ConfigureThreads + at::manual_seed(seed), logged in one line.
absl::StatusOr<Runtime> SetUpRuntime(const ExperimentConfig& config);

// CPUs in this process's affinity mask.
int AvailableCpus();

}  // namespace convnextv2::run

#endif  // CONVNEXTV2_RUN_RUNTIME_H_
