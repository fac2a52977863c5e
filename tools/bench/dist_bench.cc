// Prints the all-reduce bandwidth of c10d/Gloo between processes, and the scaling of a
// data-parallel training step from 1 to N processes (same batch per process, gradients
// all-reduced by dist::GradientSync, one intra-op thread per process).
//
//   bazel run //tools/bench:dist_bench -- --procs=2 --model=convnextv2_atto --batch=64
//   srun -N 2 --ntasks-per-node=1 bazel-bin/tools/bench/dist_bench --external   # across hosts
//
// By default the benchmark starts its own worker processes on this host (itself, with
// RANK/WORLD_SIZE and MASTER_ADDR=127.0.0.1: Gloo over loopback). With --external its ranks are
// started from outside, one per process of the job (srun on each host, torchrun, or by hand with
// RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT), and find each other as the training binaries do
// (dist/env.h); after measuring across them, rank 0 repeats the measurement with as many
// processes of its own on its host over loopback, so both sets of figures come from one run.
// tools/bench/dist_bench_hosts.sh runs that on a local cluster of network-namespace hosts.
#include <ATen/ATen.h>
#include <gflags/gflags.h>
#include <glog/logging.h>
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

DEFINE_int32(procs, 2, "processes of the multi-process runs (without --external)");
DEFINE_bool(external, false,
            "the ranks are started from outside (srun, torchrun, RANK/WORLD_SIZE/MASTER_*): "
            "measure across them, then rank 0 repeats with as many local processes over loopback");
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

// The process group of the ranks the environment describes (RANK... or Slurm's variables).
std::shared_ptr<convnextv2::dist::Communicator> Connect(std::string* where = nullptr) {
  absl::StatusOr<convnextv2::dist::DistEnv> env =
      convnextv2::dist::ResolveDistEnv(convnextv2::DistributedConfig());
  if (!env.ok()) {
    std::fprintf(stderr, "%s\n", std::string(env.status().message()).c_str());
    return nullptr;
  }
  if (!env->distributed()) {
    std::fprintf(stderr, "dist_bench: the environment describes a single process (%s)\n",
                 env->source.c_str());
    return nullptr;
  }
  if (where != nullptr) *where = env->Describe();
  auto comm = convnextv2::dist::Communicator::Create(*env, c10::Device(c10::kCPU),
                                                     std::chrono::seconds(300));
  if (!comm.ok()) {
    std::fprintf(stderr, "%s\n", std::string(comm.status().message()).c_str());
    return nullptr;
  }
  return *comm;
}

// All-reduce timings over `comm`; rank 0 prints them, labelled with `over`.
int AllReduce(convnextv2::dist::Communicator& comm, const char* over) {
  for (int mib : {1, 4, 16, 64}) {
    std::vector<at::Tensor> t{at::ones({int64_t{mib} << 18})};  // floats
    if (!comm.AllReduceSum(t).ok()) return 1;                    // warm-up
    const int iters = mib >= 16 ? 5 : 20;
    const auto start = Clock::now();
    for (int i = 0; i < iters; ++i) {
      if (!comm.AllReduceSum(t).ok()) return 1;
    }
    const double seconds = Since(start) / iters;
    if (comm.rank() == 0) {
      const double algbw = mib / 1024.0 / seconds;
      const int n = comm.world_size();
      std::printf("all-reduce %3d MiB, %d processes %s: %8.2f ms, algbw %6.2f GiB/s, busbw %6.2f GiB/s\n",
                  mib, n, over, seconds * 1e3, algbw, algbw * 2.0 * (n - 1) / n);
      std::fflush(stdout);
    }
  }
  return 0;
}

// Seconds per training step of this process (rank 0 prints it, labelled with `over`), or -1.
double StepSeconds(const std::shared_ptr<convnextv2::dist::Communicator>& comm, const char* over) {
  at::set_num_threads(1);
  at::manual_seed(0);
  auto model = *convnextv2::models::CreateConvNeXtV2(FLAGS_model, 1000, 0.0, 1.0);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  convnextv2::train::OptimizerStepper stepper(&sgd, model->parameters(), {});
  std::unique_ptr<convnextv2::dist::GradientSync> sync;
  if (comm != nullptr) {
    if (!convnextv2::train::BroadcastModule(*comm, *model).ok()) return -1;
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
    if (!stepper.Backward(loss, 0).error.ok()) return -1;
  }
  const double per_step = Since(start) / FLAGS_steps;
  const int world = comm != nullptr ? comm->world_size() : 1;
  if (comm == nullptr || comm->rank() == 0) {
    std::printf("%s batch %d/process at %dpx, %d process(es) x 1 thread %s: %.1f ms/step, %.1f img/s\n",
                FLAGS_model.c_str(), FLAGS_batch, FLAGS_size, world, over, per_step * 1e3,
                world * FLAGS_batch / per_step);
    std::fflush(stdout);
  }
  return per_step;
}

// A worker's role: --role=allreduce|step1|stepn; step workers write rank 0's seconds per step
// to --result.
int Worker() {
  std::shared_ptr<convnextv2::dist::Communicator> comm;
  if (FLAGS_role != "step1") {
    comm = Connect();
    if (!comm) return 1;
  }
  if (FLAGS_role == "allreduce") return AllReduce(*comm, "over loopback");
  const double per_step = StepSeconds(comm, comm ? "over loopback" : "alone");
  if (per_step < 0) return 1;
  if (!comm || comm->rank() == 0) {
    if (FILE* f = std::fopen(FLAGS_result.c_str(), "w")) {
      std::fprintf(f, "%.9f\n", per_step);
      std::fclose(f);
    }
  }
  return 0;
}

// This host's all-reduce and step scaling over `procs` local processes (started here, over
// loopback); t1 and tn: seconds per step of 1 and of `procs` processes. False if a run failed.
bool MeasureLoopback(int procs, double* t1, double* tn) {
  char path[] = "/tmp/dist_bench_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return false;
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
  bool ok = RunWorkers("allreduce", procs);
  ok = ok && RunWorkers("step1", 1);
  *t1 = read_result();
  ok = ok && RunWorkers("stepn", procs);
  *tn = read_result();
  unlink(path);
  return ok && *t1 > 0 && *tn > 0;
}

void PrintScaling(int procs, const char* over, double t1, double tn) {
  // Same batch per process: N processes do N times the work per step.
  std::printf("scaling efficiency 1 -> %d processes %s: %.1f%% (ideal 100%%: step time unchanged)\n",
              procs, over, 100.0 * t1 / tn);
}

// --external: across the launched ranks first, then (rank 0) over loopback beside it.
int External() {
  std::string where;
  std::shared_ptr<convnextv2::dist::Communicator> comm = Connect(&where);
  if (!comm) return 1;
  const int rank = comm->rank(), world = comm->world_size();
  char host[256] = "?";
  gethostname(host, sizeof(host) - 1);
  if (rank == 0) {
    std::printf("CPU cores visible on %s: %ld (processes share them)\n", host,
                sysconf(_SC_NPROCESSORS_ONLN));
  }
  std::printf("rank %d of %d on %s: %s\n", rank, world, host, where.c_str());
  std::fflush(stdout);
  if (AllReduce(*comm, "across the launched ranks") != 0) return 1;
  const double tn_launched = StepSeconds(comm, "across the launched ranks");
  if (tn_launched < 0) return 1;
  comm.reset();  // the other ranks are done
  if (rank != 0) return 0;
  std::printf("rank 0 on %s, beside it: %d processes of its own over loopback\n", host, world);
  std::fflush(stdout);
  double t1 = 0, tn_loopback = 0;
  if (!MeasureLoopback(world, &t1, &tn_loopback)) {
    std::fprintf(stderr, "a loopback worker failed\n");
    return 1;
  }
  PrintScaling(world, "across the launched ranks", t1, tn_launched);
  PrintScaling(world, "over loopback", t1, tn_loopback);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;  // the Gloo device line of each rank
  google::InitGoogleLogging(argv[0]);
  convnextv2::util::RetainFreedMemory(true);  // as the training binaries
  if (!FLAGS_role.empty()) return Worker();
  if (FLAGS_external) return External();
  std::printf("CPU cores visible: %ld (processes share them)\n", sysconf(_SC_NPROCESSORS_ONLN));
  std::fflush(stdout);
  double t1 = 0, tn = 0;
  if (!MeasureLoopback(FLAGS_procs, &t1, &tn)) {
    std::fprintf(stderr, "a worker failed\n");
    return 1;
  }
  PrintScaling(FLAGS_procs, "over loopback", t1, tn);
  return 0;
}
