// The torch optimizer behind each Algorithm of optimizers.h, one row each: how it is built over
// parameter groups, and how one parameter's state is saved as named fields and restored. The
// field names are a file format (checkpoint::AddOptimizer stores <param>.<field>): a row keeps
// its names, and a new algorithm is a new row.
//
//   const AlgorithmOps& ops = OpsOf(Algorithm::kAdamW);
//   std::vector<StateField> fields = ops.save_state(*optimizer.state().begin()->second);
//   // {"step", exp_avg, exp_avg_sq} (+ max_exp_avg_sq with amsgrad)
#ifndef CONVNEXTV2_OPTIM_ALGORITHMS_H_
#define CONVNEXTV2_OPTIM_ALGORITHMS_H_

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/optim/optimizers.h"
#include "convnextv2/optim/param_groups.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::optim {

struct StateField {
  std::string name;
  at::Tensor tensor;
};

// One parameter's saved fields, for a row's load_state; errors name the parameter and field.
class SavedFields {
 public:
  virtual ~SavedFields() = default;
  virtual bool Has(absl::string_view field) const = 0;
  // A copy of the field on the parameter's device and dtype, its shape checked against the
  // parameter's (FailedPrecondition); DataLoss "optimizer state of <name> lacks <field>".
  virtual absl::StatusOr<at::Tensor> LikeParam(absl::string_view field) const = 0;
  // A scalar integer field as stored (Adam's step count); DataLoss when absent.
  virtual absl::StatusOr<int64_t> Count(absl::string_view field) const = 0;
};

struct AlgorithmOps {
  Algorithm algorithm;
  // The optimizer of `entry`, one torch param group per ParamGroup, each at lr * lr_scale.
  absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> (*create)(
      const OptimConfig& optim, const OptimizerEntry& entry,
      const std::vector<ParamGroup>& groups, double lr);
  // The fields of one parameter's state (an optimizer this row created).
  std::vector<StateField> (*save_state)(const torch::optim::OptimizerParamState& state);
  absl::StatusOr<std::unique_ptr<torch::optim::OptimizerParamState>> (*load_state)(
      const SavedFields& fields);
};

const AlgorithmOps& OpsOf(Algorithm algorithm);

}  // namespace convnextv2::optim

#endif  // CONVNEXTV2_OPTIM_ALGORITHMS_H_
