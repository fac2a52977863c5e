// The collectives a data-parallel run needs, on libtorch's own c10d process groups: a TCPStore
// rendezvous on rank 0 and ProcessGroupGloo on CPU, or ProcessGroupNCCL for CUDA tensors when
// built with --define=nccl=1 against a CUDA libtorch. Failures come back as a Status naming
// the operation and the rank; a peer that died or hangs fails the collective within `timeout`.
//
//   absl::StatusOr<DistEnv> env = ResolveDistEnv(config.distributed());
//   absl::StatusOr<std::shared_ptr<Communicator>> comm =
//       Communicator::Create(*env, device, std::chrono::seconds(300));
//   std::vector<at::Tensor> params = ...;
//   absl::Status s = (*comm)->Broadcast(params, /*root=*/0);   // identical initial weights
//   s = (*comm)->AllReduceSum(stats);                          // in place
#ifndef CONVNEXTV2_DIST_PROCESS_GROUP_H_
#define CONVNEXTV2_DIST_PROCESS_GROUP_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/dist/env.h"

namespace convnextv2::dist {

// A collective in flight; Wait() blocks until it is done (or failed / timed out).
class PendingOp {
 public:
  virtual ~PendingOp() = default;
  virtual absl::Status Wait() = 0;
};

class Communicator {
 public:
  // Rendezvous with the other world_size - 1 processes (rank 0 hosts the TCPStore). `device`
  // picks the backend: CPU -> Gloo, CUDA -> NCCL (an error when built without NCCL).
  static absl::StatusOr<std::shared_ptr<Communicator>> Create(const DistEnv& env,
                                                              c10::Device device,
                                                              std::chrono::milliseconds timeout);
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;

  // Sums each tensor over all ranks, in place. Tensors may live on any device: host values
  // (counts, flags) are staged through the group's device when it is a GPU (NCCL).
  virtual absl::Status AllReduceSum(std::vector<at::Tensor>& tensors) = 0;
  // Starts summing `tensor` in place; the caller keeps it alive until Wait() returns. The
  // tensor must be on the group's device (CPU for Gloo, the rank's GPU for NCCL).
  virtual absl::StatusOr<std::unique_ptr<PendingOp>> AllReduceSumAsync(at::Tensor tensor) = 0;
  // Copies root's tensors into every rank's, in place (any device, as AllReduceSum).
  virtual absl::Status Broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  virtual absl::Status Barrier() = 0;
};

// Broadcasts parameters and buffers (as listed by the caller, same order on every rank) from
// rank 0 in flat per-dtype chunks, so that all ranks start from identical weights.
absl::Status BroadcastTensors(Communicator& comm, const std::vector<at::Tensor>& tensors);

// Logical OR of a flag over all ranks (e.g. "a preemption signal arrived"), so that every rank
// takes the same branch.
absl::StatusOr<bool> AnyRank(Communicator& comm, bool flag);

}  // namespace convnextv2::dist

#endif  // CONVNEXTV2_DIST_PROCESS_GROUP_H_
