// Process-wide settings a run starts with: device, intra-op threads, the global seed.
//
//   absl::StatusOr<Runtime> rt = SetUpRuntime(config);   // device, threads, seeded RNG
//   model->to(rt->device);
#ifndef CONVNEXTV2_ENGINE_RUNTIME_H_
#define CONVNEXTV2_ENGINE_RUNTIME_H_

#include <c10/core/Device.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::engine {

// train.device: "cpu", "cuda", "cuda:N", or "" for cuda when available and cpu otherwise.
// Asking for cuda without a CUDA build or GPU is an error that says so.
absl::StatusOr<c10::Device> ResolveDevice(const ExperimentConfig& config);

// Sets torch's intra-op threads to train.num_threads, or to the CPUs this process may run on
// (its affinity mask, which respects containers and Slurm's cpus_per_task) when 0. Returns it.
int ConfigureThreads(const ExperimentConfig& config);

// What a training run sets up before anything else. Single process for now (rank 0 of 1).
struct Runtime {
  c10::Device device{c10::kCPU};
  int threads = 1;
  int rank = 0;
  int world_size = 1;
  uint64_t seed = 0;  // train.seed + rank, given to at::manual_seed
};

// ResolveDevice + ConfigureThreads + at::manual_seed(seed), logged in one line.
absl::StatusOr<Runtime> SetUpRuntime(const ExperimentConfig& config);

// CPUs in this process's affinity mask.
int AvailableCpus();

}  // namespace convnextv2::engine

#endif  // CONVNEXTV2_ENGINE_RUNTIME_H_
