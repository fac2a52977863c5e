#include "convnextv2/engine/runtime.h"

#include <ATen/Parallel.h>
#include <ATen/Context.h>
#include <glog/logging.h>
#include <sched.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace convnextv2::engine {

int AvailableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

int ConfigureThreads(const ExperimentConfig& config) {
  const int threads = config.train().num_threads() > 0 ? config.train().num_threads()
                                                       : AvailableCpus();
  at::set_num_threads(threads);
  return threads;
}

absl::StatusOr<c10::Device> ResolveDevice(const ExperimentConfig& config) {
  const std::string& name = config.train().device();
  const bool cuda_available = at::hasCUDA();
  if (name.empty()) return cuda_available ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (absl::StartsWith(name, "cuda")) {
    if (!cuda_available) {
      return absl::FailedPreconditionError(absl::StrCat(
          "train.device: '", name,
          "' asked for, but this build or machine has no CUDA (build with LIBTORCH_HOME pointing "
          "at a CUDA libtorch, or use --device cpu)"));
    }
    return c10::Device(name);
  }
  return absl::InvalidArgumentError(absl::StrCat("train.device: unknown device '", name, "'"));
}

absl::StatusOr<Runtime> SetUpRuntime(const ExperimentConfig& config) {
  Runtime rt;
  absl::StatusOr<c10::Device> device = ResolveDevice(config);
  if (!device.ok()) return device.status();
  rt.device = *device;
  rt.threads = ConfigureThreads(config);
  rt.seed = static_cast<uint64_t>(config.train().seed()) + rt.rank;
  at::manual_seed(rt.seed);
  LOG(INFO) << "device " << rt.device.str() << ", " << rt.threads << " threads, seed " << rt.seed;
  return rt;
}

}  // namespace convnextv2::engine
