#include "convnextv2/run/runtime.h"

#include <ATen/Parallel.h>
#include <ATen/Context.h>
#include <glog/logging.h>
#include <sched.h>

#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::run {

int AvailableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

int ConfigureThreads(const ExperimentConfig& config, const dist::DistEnv& env) {
  int threads = config.train().num_threads();
  if (threads <= 0) {
    threads = AvailableCpus();
    // Processes started by hand or by torchrun all see every CPU: share them.
    if (env.local_world_size > 1 &&
        threads == static_cast<int>(std::thread::hardware_concurrency())) {
      threads = std::max(1, threads / env.local_world_size);
    }
  }
  at::set_num_threads(threads);
  return threads;
}

namespace {

// Why a CUDA device cannot be had: this binary was built without CUDA, or none is visible.
std::string NoCudaReason() {
#ifdef CONVNEXTV2_WITH_CUDA
  return "no CUDA device is visible to this process (check nvidia-smi and CUDA_VISIBLE_DEVICES)";
#else
  return "this build has no CUDA (the default build uses Debian's CPU libtorch; build against "
         "a CUDA libtorch with --config=cuda, see docs/gpu.md)";
#endif
}

}  // namespace

absl::StatusOr<c10::Device> ResolveDevice(const ExperimentConfig& config,
                                          const dist::DistEnv& env) {
  const std::string& name = config.train().device();
  const bool cuda_available = at::hasCUDA();
  if (name == "cpu" || (name.empty() && !cuda_available)) return c10::Device(c10::kCPU);
  if (name.empty() || absl::StartsWith(name, "cuda")) {
    if (!cuda_available) {
      return absl::FailedPreconditionError(absl::StrCat(
          "train.device: '", name, "' asked for, but ", NoCudaReason(), "; or use --device cpu"));
    }
    const int gpus = static_cast<int>(at::getNumGPUs());
    absl::string_view index_text = name;
    if (absl::ConsumePrefix(&index_text, "cuda:")) {
      // Validated as digits by config::CheckRunConfig.
      int index = 0;
      if (!absl::SimpleAtoi(index_text, &index) || index < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("train.device: '", name, "' is not cuda:N with N a GPU index"));
      }
      if (index >= gpus) {
        return absl::FailedPreconditionError(absl::StrCat(
            "train.device: '", name, "' asked for, but this node has ", gpus, " GPU(s): ",
            "cuda:0 to cuda:", gpus - 1));
      }
      return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
    }
    // One GPU per process on this node, chosen by local rank.
    if (env.local_world_size > gpus) {
      return absl::FailedPreconditionError(absl::StrCat(
          env.local_world_size, " processes were started on this node (", env.source,
          ") but it has ", gpus, " GPU(s): start at most one process per GPU (Slurm: "
          "--ntasks-per-node <= --gpus-per-node)"));
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  }
  return absl::InvalidArgumentError(absl::StrCat("train.device: unknown device '", name, "'"));
}

absl::StatusOr<Runtime> SetUpRuntime(const ExperimentConfig& config) {
  Runtime rt;
  absl::StatusOr<dist::DistEnv> env = dist::ResolveDistEnv(config.distributed());
  CONVNEXTV2_RETURN_IF_ERROR(env);
  rt.env = *env;
  rt.rank = env->rank;
  rt.world_size = env->world_size;
  absl::StatusOr<c10::Device> device = ResolveDevice(config, *env);
  CONVNEXTV2_RETURN_IF_ERROR(device);
  rt.device = *device;
  rt.threads = ConfigureThreads(config, *env);
  if (env->distributed()) {
    LOG(INFO) << "distributed: " << env->Describe() << "; waiting for all ranks";
    absl::StatusOr<std::shared_ptr<dist::Communicator>> comm = dist::Communicator::Create(
        *env, rt.device, std::chrono::seconds(config.distributed().dist_timeout()));
    CONVNEXTV2_RETURN_IF_ERROR(comm);
    rt.comm = *comm;
    LOG(INFO) << "process group ready: " << rt.comm->backend() << ", " << rt.world_size
              << " ranks";
  }
  rt.seed = static_cast<uint64_t>(config.train().seed()) + rt.rank;
  at::manual_seed(rt.seed);
  LOG(INFO) << "device " << rt.device.str() << ", " << rt.threads << " threads, seed " << rt.seed;
  return rt;
}

}  // namespace convnextv2::run
