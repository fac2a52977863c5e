// cuda_ops.h in a build without --config=cuda: nothing applies, and a call names the fix.
#include <c10/util/Exception.h>

#include "convnextv2/models/cuda_ops.h"

namespace convnextv2::models::internal {

bool GrnCudaApplies(const at::Tensor&) { return false; }

bool ResidualCudaApplies(const at::Tensor&, const at::Tensor&) { return false; }

at::Tensor GeluGrnCuda(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                       const at::Tensor&, double) {
  TORCH_CHECK(false, "GeluGrnCuda: this binary was built without --config=cuda");
}

at::Tensor BiasDropPathResidualCuda(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                    const at::Tensor&) {
  TORCH_CHECK(false, "BiasDropPathResidualCuda: this binary was built without --config=cuda");
}

}  // namespace convnextv2::models::internal
