// Device choice, thread count and seeding of a run (run/runtime.h).
#include "convnextv2/run/runtime.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

namespace convnextv2::run {
namespace {

ExperimentConfig WithDevice(const std::string& device) {
  ExperimentConfig c;
  c.mutable_train()->set_device(device);
  return c;
}

TEST(ResolveDevice, CpuAndTheErrorsThatNameTheField) {
  absl::StatusOr<c10::Device> cpu = ResolveDevice(WithDevice("cpu"));
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_TRUE(cpu->is_cpu());
  absl::StatusOr<c10::Device> bad = ResolveDevice(WithDevice("tpu"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("train.device: unknown device 'tpu'"),
            std::string::npos);
  if (!at::hasCUDA()) {
    absl::StatusOr<c10::Device> none = ResolveDevice(WithDevice(""));
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->is_cpu());  // "" means cuda when there is one
    absl::StatusOr<c10::Device> cuda = ResolveDevice(WithDevice("cuda"));
    ASSERT_FALSE(cuda.ok());
    EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(cuda.status().message().find("no CUDA"), std::string::npos);
#ifndef CONVNEXTV2_WITH_CUDA
    // The CPU build says how to get a CUDA one.
    EXPECT_NE(cuda.status().message().find("this build has no CUDA"), std::string::npos)
        << cuda.status();
    EXPECT_NE(cuda.status().message().find("--config=cuda"), std::string::npos);
#endif
    EXPECT_NE(cuda.status().message().find("or use --device cpu"), std::string::npos);
    absl::StatusOr<c10::Device> cuda1 = ResolveDevice(WithDevice("cuda:1"));
    ASSERT_FALSE(cuda1.ok());
    EXPECT_NE(cuda1.status().message().find("train.device: 'cuda:1' asked for"),
              std::string::npos);
  }
}

TEST(ConfigureThreads, ConfiguredOrAffinityShared) {
  ExperimentConfig c;
  c.mutable_train()->set_num_threads(1);
  EXPECT_EQ(ConfigureThreads(c), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  c.mutable_train()->set_num_threads(0);
  EXPECT_EQ(ConfigureThreads(c), AvailableCpus());
  EXPECT_GE(AvailableCpus(), 1);
}

TEST(SetUpRuntime, SingleProcessSeedsTorch) {
  ExperimentConfig c = WithDevice("cpu");
  c.mutable_train()->set_seed(11);
  c.mutable_train()->set_num_threads(1);
  absl::StatusOr<Runtime> rt = SetUpRuntime(c);
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_EQ(rt->rank, 0);
  EXPECT_EQ(rt->world_size, 1);
  EXPECT_TRUE(rt->writer());
  EXPECT_EQ(rt->comm, nullptr);
  EXPECT_EQ(rt->seed, 11u);
  const at::Tensor drawn = at::rand({4});
  at::manual_seed(11);
  EXPECT_TRUE(at::equal(drawn, at::rand({4})));  // the global generator was seeded with 11
}

}  // namespace
}  // namespace convnextv2::run
