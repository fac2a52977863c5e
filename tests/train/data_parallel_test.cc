// Data parallelism over real c10d process groups: the test re-runs its own binary as worker
// processes (rank r of n, Gloo over localhost on a free port) and compares what they did with
// a single process doing the same work.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/optim/sgd.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/dist/env.h"
#include "convnextv2/dist/grad_sync.h"
#include "convnextv2/dist/local_ranks.h"
#include "convnextv2/dist/process_group.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/train/data_parallel.h"
#include "convnextv2/train/train_step.h"

namespace convnextv2::train {
namespace {

using ::testing::HasSubstr;
constexpr int kPerRank = 4;  // images per rank and micro-batch
constexpr int kSteps = 3;    // optimizer steps

std::string OutPath(const std::string& tag, int rank) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", tag, "_", rank, ".txt");
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Starts `world` workers (ranks listed in `ranks`) of role `role`; returns their pids.
absl::StatusOr<std::vector<pid_t>> Spawn(const std::string& role, int world,
                                         const std::vector<int>& ranks,
                                         const std::string& extra_env = "") {
  std::vector<std::string> env = {"DP_TEST_ROLE=" + role,
                                  absl::StrCat("TEST_TMPDIR=", std::getenv("TEST_TMPDIR")),
                                  "OMP_NUM_THREADS=1"};
  if (!extra_env.empty()) env.push_back(extra_env);
  return dist::SpawnLocalRanks(ranks, world, {}, env);
}

// The same tiny training on every path: the test variant (as atto, smaller) on 32x32 inputs,
// SGD with momentum (no Adam, whose normalization would magnify rounding differences of
// near-zero gradients), drop_path 0.
struct Trainer {
  models::ConvNeXtV2 model{nullptr};
  std::unique_ptr<torch::optim::SGD> sgd;
  std::unique_ptr<OptimizerStepper> stepper;
  explicit Trainer(int update_freq, uint64_t init_seed) {
    at::manual_seed(init_seed);
    model = *models::CreateConvNeXtV2(models::kTestVariant, 5, /*drop_path=*/0.0, 1.0);
    sgd = std::make_unique<torch::optim::SGD>(model->parameters(),
                                              torch::optim::SGDOptions(0.05).momentum(0.9));
    stepper = std::make_unique<OptimizerStepper>(
        sgd.get(), model->parameters(), StepperOptions{.update_freq = update_freq});
  }
  // Micro-batch `m` of step `s`: `count` images starting at `first` of that micro-batch's
  // global batch of 2 * kPerRank.
  void Micro(int s, int m, int first, int count) {
    at::manual_seed(1000 + 10 * s + m);
    const at::Tensor x = at::randn({2 * kPerRank, 3, 32, 32});
    const at::Tensor y = at::randint(0, 5, {2 * kPerRank}, at::kLong);
    const at::Tensor logits = model->forward(x.narrow(0, first, count));
    const at::Tensor loss = at::cross_entropy_loss(logits, y.narrow(0, first, count));
    MicroStepResult r = stepper->Backward(loss, m);
    ASSERT_TRUE(r.error.ok()) << r.error;
  }
  at::Tensor Flat() const {
    std::vector<at::Tensor> parts;
    for (const at::Tensor& p : model->parameters()) parts.push_back(p.detach().reshape({-1}));
    return at::cat(parts);
  }
};

void WriteTensor(const at::Tensor& t, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  const at::Tensor c = t.contiguous();
  out.write(static_cast<const char*>(c.data_ptr()), c.numel() * sizeof(float));
}

at::Tensor ReadTensor(const std::string& path, int64_t n) {
  const std::string bytes = ReadAll(path);
  EXPECT_EQ(bytes.size(), n * sizeof(float)) << path;
  at::Tensor t = at::empty({n}, at::kFloat);
  std::memcpy(t.data_ptr(), bytes.data(), std::min<size_t>(bytes.size(), n * sizeof(float)));
  return t;
}

// ---- workers ----------------------------------------------------------------------------

int TrainWorker(const dist::DistEnv& env, int update_freq) {
  absl::StatusOr<std::shared_ptr<dist::Communicator>> comm =
      dist::Communicator::Create(env, c10::Device(c10::kCPU), std::chrono::seconds(60));
  if (!comm.ok()) return 10;
  Trainer t(update_freq, /*init_seed=*/77 + env.rank);  // different per rank: broadcast fixes it
  if (!BroadcastModule(**comm, *t.model).ok()) return 11;
  // Small buckets so that several (of the model's 290 KB) are in flight during backward.
  dist::GradientSync sync(*comm, t.model->parameters(), /*bucket_bytes=*/64 << 10);
  if (sync.num_buckets() < 3) return 12;
  t.stepper->set_grad_sync(&sync);
  for (int s = 0; s < kSteps; ++s) {
    for (int m = 0; m < update_freq; ++m) t.Micro(s, m, env.rank * kPerRank, kPerRank);
  }
  WriteTensor(t.Flat(), OutPath(absl::StrCat("train", update_freq), env.rank));
  return 0;
}

int WorkerMain(const std::string& role) {
  absl::StatusOr<dist::DistEnv> env = dist::ResolveDistEnv(DistributedConfig());
  if (!env.ok()) return 9;
  at::set_num_threads(1);
  if (role == "train1") return TrainWorker(*env, 1);
  if (role == "train2") return TrainWorker(*env, 2);
  const auto timeout = std::chrono::seconds(std::atoi(std::getenv("DP_TIMEOUT")));
  absl::StatusOr<std::shared_ptr<dist::Communicator>> comm =
      dist::Communicator::Create(*env, c10::Device(c10::kCPU), timeout);
  if (!comm.ok()) {
    std::ofstream(OutPath(role, env->rank)) << comm.status().message();
    return 20;
  }
  std::vector<at::Tensor> t{at::ones({1000})};
  if (!(*comm)->AllReduceSum(t).ok()) return 21;  // everybody is here
  if (env->rank == 1 && role == "die") std::_Exit(3);
  if (env->rank == 1 && role == "hang") std::this_thread::sleep_for(std::chrono::seconds(60));
  for (int i = 0; i < 1000; ++i) {
    absl::Status s = (*comm)->AllReduceSum(t);
    if (!s.ok()) {
      std::ofstream(OutPath(role, env->rank)) << s.message();
      return 22;
    }
  }
  return 0;
}

// ---- tests ------------------------------------------------------------------------------

void ExpectSameAsOneProcess(int update_freq) {
  const absl::StatusOr<std::vector<pid_t>> pids =
      Spawn(absl::StrCat("train", update_freq), 2, {0, 1});
  ASSERT_TRUE(pids.ok()) << pids.status();
  for (pid_t pid : *pids) ASSERT_EQ(dist::WaitExitStatus(pid), 0);
  // One process, batches of 2 * kPerRank, the same micro-batches.
  at::set_num_threads(1);
  Trainer one(update_freq, /*init_seed=*/77);
  for (int s = 0; s < kSteps; ++s) {
    for (int m = 0; m < update_freq; ++m) one.Micro(s, m, 0, 2 * kPerRank);
  }
  const at::Tensor expected = one.Flat();
  const at::Tensor init = Trainer(update_freq, 77).Flat();
  for (int rank = 0; rank < 2; ++rank) {
    const at::Tensor got =
        ReadTensor(OutPath(absl::StrCat("train", update_freq), rank), expected.numel());
    EXPECT_TRUE(at::allclose(got, expected, /*rtol=*/1e-4, /*atol=*/1e-5))
        << "rank " << rank << " max |diff| " << (got - expected).abs().max().item<float>();
    // The training moved the weights much more than the tolerance.
    EXPECT_GT((expected - init).abs().max().item<float>(), 1e-2);
  }
  // Both ranks hold bitwise the same weights.
  EXPECT_TRUE(at::equal(ReadTensor(OutPath(absl::StrCat("train", update_freq), 0), expected.numel()),
                        ReadTensor(OutPath(absl::StrCat("train", update_freq), 1), expected.numel())));
}

TEST(DataParallelTest, TwoRanksEqualOneRankWithTheDoubleBatch) { ExpectSameAsOneProcess(1); }

TEST(DataParallelTest, TwoRanksEqualOneRankWithAccumulation) { ExpectSameAsOneProcess(2); }

TEST(DataParallelTest, ARankThatExitsFailsTheOthersWithAClearError) {
  const auto start = std::chrono::steady_clock::now();
  const absl::StatusOr<std::vector<pid_t>> pids = Spawn("die", 2, {0, 1}, "DP_TIMEOUT=20");
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_EQ(dist::WaitExitStatus((*pids)[1]), 3);
  EXPECT_EQ(dist::WaitExitStatus((*pids)[0]), 22);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(40));
  EXPECT_THAT(ReadAll(OutPath("die", 0)), HasSubstr("rank 0: all-reduce failed"));
}

TEST(DataParallelTest, AHangingRankFailsTheOthersWithinTheTimeout) {
  const auto start = std::chrono::steady_clock::now();
  const absl::StatusOr<std::vector<pid_t>> pids = Spawn("hang", 2, {0, 1}, "DP_TIMEOUT=3");
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_EQ(dist::WaitExitStatus((*pids)[0]), 22);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  kill((*pids)[1], SIGKILL);
  dist::WaitExitStatus((*pids)[1]);
  EXPECT_THAT(ReadAll(OutPath("hang", 0)), HasSubstr("rank 0: all-reduce failed"));
}

TEST(DataParallelTest, AMissingRankFailsTheRendezvousWithinTheTimeout) {
  const auto start = std::chrono::steady_clock::now();
  const absl::StatusOr<std::vector<pid_t>> pids = Spawn("noshow", 2, {0}, "DP_TIMEOUT=3");
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_EQ(dist::WaitExitStatus((*pids)[0]), 20);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_THAT(ReadAll(OutPath("noshow", 0)), HasSubstr("rendezvous at 127.0.0.1:"));
}

}  // namespace
}  // namespace convnextv2::train

int main(int argc, char** argv) {
  if (const char* role = std::getenv("DP_TEST_ROLE")) {
    return convnextv2::train::WorkerMain(role);
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
