// Prints the all-reduce bandwidth of c10d/Gloo between local processes, and the scaling of a
// data-parallel training step from 1 to N processes (same batch per process, gradients
// all-reduced by dist::GradientSync, one intra-op thread per process).
//
//   bazel run -c opt //tools/bench:dist_bench -- --procs=2 --model=convnextv2_atto --batch=64
//
// The benchmark starts its own worker processes (itself, with RANK/WORLD_SIZE/MASTER_* set).
#include <ATen/ATen.h>
#include <gflags/gflags.h>
#include <torch/optim/sgd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "convnextv2/dist/env.h"
#include "convnextv2/dist/grad_sync.h"
#include "convnextv2/dist/local_ranks.h"
#include "convnextv2/dist/process_group.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/train/data_parallel.h"
#include "convnextv2/train/train_step.h"
#include "convnextv2/util/malloc_tuning.h"

DEFINE_int32(procs, 2, "processes of the multi-process runs");
DEFINE_string(model, "convnextv2_atto", "model of the training-step benchmark");
DEFINE_int32(batch, 64, "images per process and step");
DEFINE_int32(size, 32, "input size");
DEFINE_int32(steps, 10, "timed steps (after 2 untimed)");
DEFINE_int32(bucket_mb, 25, "gradient bucket size in MiB");
DEFINE_string(role, "", "internal: worker role");
DEFINE_string(result, "", "internal: where rank 0 writes its seconds per step");

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Runs `world` copies of this binary with --role=role; returns false if one failed.
bool RunWorkers(const std::string& role, int world) {
  std::vector<int> ranks(world);
  for (int r = 0; r < world; ++r) ranks[r] = r;
  const std::vector<std::string> args = {"--role=" + role,
                                         absl::StrCat("--model=", FLAGS_model),
                                         absl::StrCat("--batch=", FLAGS_batch),
                                         absl::StrCat("--size=", FLAGS_size),
                                         absl::StrCat("--steps=", FLAGS_steps),
                                         absl::StrCat("--bucket_mb=", FLAGS_bucket_mb),
                                         "--result=" + FLAGS_result};
  absl::StatusOr<std::vector<pid_t>> pids = convnextv2::dist::SpawnLocalRanks(
      ranks, world, args, convnextv2::dist::CurrentEnvironment());
  if (!pids.ok()) {
    std::fprintf(stderr, "%s\n", std::string(pids.status().message()).c_str());
    return false;
  }
  bool ok = true;
  for (pid_t pid : *pids) ok = convnextv2::dist::WaitExitStatus(pid) == 0 && ok;
  return ok;
}

std::shared_ptr<convnextv2::dist::Communicator> Connect() {
  absl::StatusOr<convnextv2::dist::DistEnv> env =
      convnextv2::dist::ResolveDistEnv(convnextv2::DistributedConfig());
  if (!env.ok() || !env->distributed()) return nullptr;
  auto comm = convnextv2::dist::Communicator::Create(*env, c10::Device(c10::kCPU),
                                                     std::chrono::seconds(120));
  if (!comm.ok()) {
    std::fprintf(stderr, "%s\n", std::string(comm.status().message()).c_str());
    return nullptr;
  }
  return *comm;
}

int AllReduceWorker() {
  std::shared_ptr<convnextv2::dist::Communicator> comm = Connect();
  if (!comm) return 1;
  for (int mib : {1, 4, 16, 64}) {
    std::vector<at::Tensor> t{at::ones({int64_t{mib} << 18})};  // floats
    if (!comm->AllReduceSum(t).ok()) return 1;                   // warm-up
    const int iters = mib >= 16 ? 5 : 20;
    const auto start = Clock::now();
    for (int i = 0; i < iters; ++i) {
      if (!comm->AllReduceSum(t).ok()) return 1;
    }
    const double seconds = Since(start) / iters;
    if (comm->rank() == 0) {
      const double algbw = mib / 1024.0 / seconds;
      const int n = comm->world_size();
      std::printf("all-reduce %3d MiB over %d processes: %8.2f ms, algbw %6.2f GiB/s, busbw %6.2f GiB/s\n",
                  mib, n, seconds * 1e3, algbw, algbw * 2.0 * (n - 1) / n);
    }
  }
  return 0;
}

// Seconds per training step of this process (rank 0 prints it).
int StepWorker(bool distributed) {
  std::shared_ptr<convnextv2::dist::Communicator> comm = distributed ? Connect() : nullptr;
  if (distributed && !comm) return 1;
  at::set_num_threads(1);
  at::manual_seed(0);
  auto model = *convnextv2::models::CreateConvNeXtV2(FLAGS_model, 1000, 0.0, 1.0);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  convnextv2::train::OptimizerStepper stepper(&sgd, model->parameters(), {});
  std::unique_ptr<convnextv2::dist::GradientSync> sync;
  if (comm) {
    if (!convnextv2::train::BroadcastModule(*comm, *model).ok()) return 1;
    sync = std::make_unique<convnextv2::dist::GradientSync>(comm, model->parameters(),
                                                            int64_t{FLAGS_bucket_mb} << 20);
    stepper.set_grad_sync(sync.get());
  }
  const at::Tensor x = at::randn({FLAGS_batch, 3, FLAGS_size, FLAGS_size});
  const at::Tensor y = at::randint(0, 1000, {FLAGS_batch}, at::kLong);
  Clock::time_point start;
  for (int i = 0; i < FLAGS_steps + 2; ++i) {
    if (i == 2) start = Clock::now();
    const at::Tensor loss = at::cross_entropy_loss(model->forward(x), y);
    if (!stepper.Backward(loss, 0).error.ok()) return 1;
  }
  const double per_step = Since(start) / FLAGS_steps;
  const int world = comm ? comm->world_size() : 1;
  if (!comm || comm->rank() == 0) {
    std::printf("%s batch %d/process at %dpx, %d process(es) x 1 thread: %.1f ms/step, %.1f img/s\n",
                FLAGS_model.c_str(), FLAGS_batch, FLAGS_size, world, per_step * 1e3,
                world * FLAGS_batch / per_step);
    if (FILE* f = std::fopen(FLAGS_result.c_str(), "w")) {
      std::fprintf(f, "%.9f\n", per_step);
      std::fclose(f);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  convnextv2::util::RetainFreedMemory(true);  // as the training binaries
  if (FLAGS_role == "allreduce") return AllReduceWorker();
  if (FLAGS_role == "step1") return StepWorker(false);
  if (FLAGS_role == "stepn") return StepWorker(true);
  std::printf("CPU cores visible: %ld (processes share them)\n", sysconf(_SC_NPROCESSORS_ONLN));
  std::fflush(stdout);
  char path[] = "/tmp/dist_bench_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return 1;
  close(fd);
  FLAGS_result = path;
  auto read_result = [&]() {
    double v = 0;
    if (FILE* f = std::fopen(path, "r")) {
      if (std::fscanf(f, "%lf", &v) != 1) v = 0;
      std::fclose(f);
    }
    return v;
  };
  bool ok = RunWorkers("allreduce", FLAGS_procs);
  ok = ok && RunWorkers("step1", 1);
  const double t1 = read_result();
  ok = ok && RunWorkers("stepn", FLAGS_procs);
  const double tn = read_result();
  unlink(path);
  if (!ok || t1 <= 0 || tn <= 0) {
    std::fprintf(stderr, "a worker failed\n");
    return 1;
  }
  // Same batch per process: N processes do N times the work per step.
  std::printf("scaling efficiency 1 -> %d processes: %.1f%% (ideal 100%%: step time unchanged)\n",
              FLAGS_procs, 100.0 * t1 / tn);
  return 0;
}
