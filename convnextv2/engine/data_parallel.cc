#include "convnextv2/engine/data_parallel.h"

#include <ATen/ATen.h>

namespace convnextv2::engine {

absl::Status BroadcastModule(dist::Communicator& comm, const torch::nn::Module& module) {
  std::vector<at::Tensor> tensors = module.parameters();
  for (const at::Tensor& b : module.buffers()) tensors.push_back(b);
  return dist::BroadcastTensors(comm, tensors);
}

absl::Status ReduceMeters(dist::Communicator& comm, const std::vector<MeanMeter*>& meters) {
  std::vector<double> values;
  for (const MeanMeter* m : meters) {
    values.push_back(m->sum());
    values.push_back(m->count());
  }
  std::vector<at::Tensor> t{at::tensor(values, at::kDouble)};
  if (comm.backend() == "nccl") t[0] = t[0].cuda();
  if (absl::Status s = comm.AllReduceSum(t); !s.ok()) return s;
  const at::Tensor host = t[0].cpu();
  for (size_t i = 0; i < meters.size(); ++i) {
    meters[i]->Restore(host[2 * i].item<double>(), host[2 * i + 1].item<double>());
  }
  return absl::OkStatus();
}

}  // namespace convnextv2::engine
