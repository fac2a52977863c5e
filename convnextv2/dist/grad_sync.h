// Data-parallel gradient averaging, overlapped with the backward pass: DDP's reducer, in small.
//
//   GradientSync sync(comm, trainable_params, /*bucket_bytes=*/25 << 20);
//   sync.Arm();              // before the backward of the last micro-batch of a group
//   loss.backward();         // buckets are all-reduced as their gradients become ready
//   absl::Status s = sync.Finish();  // waits; every .grad is now the mean over ranks
//   optimizer.step();
//
// Parameters are grouped, in reverse order (the order backward produces them), into flat
// buckets of at most bucket_bytes. A hook on each parameter copies its gradient (plus what
// earlier micro-batches accumulated in .grad) into its bucket; when a bucket is complete its
// all-reduce starts while backward goes on. Finish() starts the buckets whose parameters got no
// gradient (with zeros or their accumulated .grad), waits for all, and writes the average back.
// Unarmed backward passes (accumulation micro-batches) cost nothing and send nothing.
#ifndef CONVNEXTV2_DIST_GRAD_SYNC_H_
#define CONVNEXTV2_DIST_GRAD_SYNC_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "convnextv2/dist/process_group.h"

namespace convnextv2::dist {

class GradientSync {
 public:
  GradientSync(std::shared_ptr<Communicator> comm, std::vector<at::Tensor> params,
               int64_t bucket_bytes);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  void Arm();
  absl::Status Finish();
  int num_buckets() const;

  struct State;  // shared with the hooks, which may outlive this object inside the graph

 private:
  std::shared_ptr<State> state_;
};

}  // namespace convnextv2::dist

#endif  // CONVNEXTV2_DIST_GRAD_SYNC_H_
