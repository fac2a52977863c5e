// A one-rank NCCL process group through Communicator (the same code path as a multi-GPU run):
// all-reduce and broadcast of CUDA tensors, and host tensors staged through the GPU. Tagged
// "gpu": without a GPU or without --config=cuda (NCCL) each test says it was skipped and why.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "convnextv2/dist/env.h"
#include "convnextv2/dist/local_ranks.h"
#include "convnextv2/dist/process_group.h"

namespace convnextv2::dist {
namespace {

std::shared_ptr<Communicator> OneRankNccl(std::string* skip) {
#ifndef CONVNEXTV2_WITH_NCCL
  *skip = "built without NCCL (build with --config=cuda: tools/cuda/build_check.sh)";
  return nullptr;
#endif
  if (!torch::cuda::is_available()) {
    *skip = "no CUDA device visible (torch::cuda::is_available())";
    return nullptr;
  }
  DistEnv env;
  absl::StatusOr<int> port = FreeLoopbackPort();
  EXPECT_TRUE(port.ok()) << port.status();
  if (!port.ok()) return nullptr;
  env.master_port = *port;
  absl::StatusOr<std::shared_ptr<Communicator>> comm =
      Communicator::Create(env, c10::Device(c10::kCUDA, 0), std::chrono::seconds(60));
  EXPECT_TRUE(comm.ok()) << comm.status();
  return comm.ok() ? *comm : nullptr;
}

TEST(NcclOneRank, AllReduceAndBroadcast) {
  std::string skip;
  std::shared_ptr<Communicator> comm = OneRankNccl(&skip);
  if (!skip.empty()) GTEST_SKIP() << "skipped: " << skip;
  ASSERT_NE(comm, nullptr);
  EXPECT_EQ(comm->backend(), "nccl");
  EXPECT_EQ(comm->world_size(), 1);

  const auto cuda = at::TensorOptions().device(at::kCUDA);
  const at::Tensor a = at::arange(1000, cuda.dtype(at::kFloat)) * 0.5;
  const at::Tensor b = at::ones({7, 3}, cuda.dtype(at::kBFloat16));
  const at::Tensor host = at::tensor({3.0, 4.0}, at::kDouble);  // staged through the GPU
  std::vector<at::Tensor> tensors = {a.clone(), b.clone(), host.clone()};
  ASSERT_TRUE(comm->AllReduceSum(tensors).ok());
  // One rank: the sum is the tensor itself, wherever it lives.
  EXPECT_TRUE(at::equal(tensors[0], a));
  EXPECT_TRUE(at::equal(tensors[1], b));
  EXPECT_TRUE(tensors[2].device().is_cpu());
  EXPECT_TRUE(at::equal(tensors[2], host));

  absl::StatusOr<std::unique_ptr<PendingOp>> op = comm->AllReduceSumAsync(tensors[0]);
  ASSERT_TRUE(op.ok()) << op.status();
  ASSERT_TRUE((*op)->Wait().ok());
  EXPECT_TRUE(at::equal(tensors[0], a));

  std::vector<at::Tensor> root = {a.clone(), host.clone()};
  ASSERT_TRUE(comm->Broadcast(root, /*root=*/0).ok());
  EXPECT_TRUE(at::equal(root[0], a));
  EXPECT_TRUE(at::equal(root[1], host));
  EXPECT_TRUE(comm->Barrier().ok());
  torch::cuda::synchronize();
}

}  // namespace
}  // namespace convnextv2::dist
