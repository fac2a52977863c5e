#include "convnextv2/train/data_parallel.h"
#include "convnextv2/util/status_macros.h"

#include <ATen/ATen.h>
#include <glog/logging.h>

namespace convnextv2::train {

absl::Status BroadcastModule(dist::Communicator& comm, const torch::nn::Module& module) {
  std::vector<at::Tensor> tensors = module.parameters();
  for (const at::Tensor& b : module.buffers()) tensors.push_back(b);
  return dist::BroadcastTensors(comm, tensors);
}

std::unique_ptr<dist::GradientSync> SyncGradients(std::shared_ptr<dist::Communicator> comm,
                                                  const torch::nn::Module& module,
                                                  const DistributedConfig& config,
                                                  OptimizerStepper* stepper) {
  std::vector<at::Tensor> params;  // module order: backward produces them in reverse
  for (const at::Tensor& p : module.parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  auto sync = std::make_unique<dist::GradientSync>(std::move(comm), std::move(params),
                                                   int64_t{config.bucket_cap_mb()} << 20);
  stepper->set_grad_sync(sync.get());
  LOG(INFO) << "data parallel: gradients all-reduced in " << sync->num_buckets()
            << " bucket(s) of at most " << config.bucket_cap_mb() << " MiB";
  return sync;
}

absl::Status ReduceMeters(dist::Communicator& comm, const std::vector<MeanMeter*>& meters) {
  std::vector<double> values;
  for (const MeanMeter* m : meters) {
    values.push_back(m->sum());
    values.push_back(m->count());
  }
  std::vector<at::Tensor> t{at::tensor(values, at::kDouble)};
  CONVNEXTV2_RETURN_IF_ERROR(comm.AllReduceSum(t));
  for (size_t i = 0; i < meters.size(); ++i) {
    meters[i]->Restore(t[0][2 * i].item<double>(), t[0][2 * i + 1].item<double>());
  }
  return absl::OkStatus();
}

}  // namespace convnextv2::train
