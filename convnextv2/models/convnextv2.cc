#include "convnextv2/models/convnextv2.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/nn/modules/container/sequential.h>

#include <numeric>

#include "convnextv2/models/cuda_ops.h"
#include "convnextv2/models/init.h"

namespace convnextv2::models {

namespace nn = torch::nn;

BlockImpl::BlockImpl(BlockOptions options) : options(std::move(options)) { reset(); }

void BlockImpl::reset() {
  const int64_t dim = options.dim();
  TORCH_CHECK(dim > 0, "Block: dim must be positive, got ", dim);
  TORCH_CHECK(options.drop_path() >= 0 && options.drop_path() < 1,
              "Block: drop_path must be in [0, 1), got ", options.drop_path());
  dwconv = register_module(
      "dwconv", nn::Conv2d(nn::Conv2dOptions(dim, dim, 7).padding(3).groups(dim)));
  norm = register_module("norm", LayerNorm(LayerNormOptions(dim)));
  pwconv1 = register_module("pwconv1", nn::Linear(dim, 4 * dim));
  grn = register_module("grn", GRN(GRNOptions(4 * dim).fused(options.fused_grn())));
  pwconv2 = register_module("pwconv2", nn::Linear(4 * dim, dim));
  // DropPath has no parameters; it is not registered so that module names stay official.
  drop_path = DropPath(options.drop_path());
}

namespace {

// Activations the fused kernels take (cuda_ops.h: CUDA float32/float16/bfloat16, or CPU under
// the emulation in //tests/models:block_emulated_test) go through them when the block's
// fused_grn option is on; fused_grn = false keeps the plain ATen chain, the reference.
bool UseCudaKernels(const BlockOptions& options, const at::Tensor& x) {
  return internal::kCudaKernels && options.fused_grn() && internal::GrnCudaApplies(x);
}

}  // namespace

at::Tensor BlockImpl::BranchWithoutLastBiasCuda(const at::Tensor& x) {
  const at::Tensor y = norm->forward(x);
  // pwconv1's bias and the GELU are folded into the GRN kernels' passes.
  at::Tensor h = at::linear(y, pwconv1->weight);
  if (internal::GrnCudaApplies(h)) {
    h = internal::GeluGrnCuda(h, pwconv1->bias, grn->gamma, grn->beta, grn->options.eps());
  } else {
    h = grn->forward(at::gelu(h + pwconv1->bias));
  }
  return at::linear(h, pwconv2->weight);
}

at::Tensor BlockImpl::BranchNHWC(const at::Tensor& x) {
  if (UseCudaKernels(options, x)) return BranchWithoutLastBiasCuda(x) + pwconv2->bias;
  at::Tensor y = norm->forward(x);
  if (options.fused_grn() && x.device().is_cpu()) {
    // pwconv1's bias and the GELU folded into the GRN's passes (GeluGrnFused).
    // Without autograd, the GRN output folded into pwconv2 (GeluGrnLinear).
    const at::Tensor h = at::linear(y, pwconv1->weight);
    return GeluGrnLinear(h, pwconv1->bias, grn->gamma, grn->beta, grn->options.eps(),
                         pwconv2->weight, pwconv2->bias);
  }
  y = pwconv1->forward(y);
  y = at::gelu(y);
  y = grn->forward(y);
  return pwconv2->forward(y);
}

at::Tensor BlockImpl::DepthwiseConv(const at::Tensor& x) {
  return options.fused_dwconv() ? DepthwiseConvFused(x, dwconv->weight, dwconv->bias)
                                : DepthwiseConvPlain(x, dwconv->weight, dwconv->bias);
}

at::Tensor BlockImpl::forward(const at::Tensor& input) {
  at::Tensor x = DepthwiseConv(input);
  if (UseCudaKernels(options, x)) {
    const at::Tensor z = BranchWithoutLastBiasCuda(x.permute({0, 2, 3, 1}));
    if (internal::ResidualCudaApplies(input, z)) {
      // pwconv2's bias, drop path and the residual sum in one pass; the drop-path factors are
      // drawn as DropPath draws them (one per sample, from torch's default generator).
      at::Tensor keep;
      const double p = drop_path->drop_prob;
      if (is_training() && p > 0.0) {
        keep = at::empty({input.size(0)}, z.options().dtype(at::kFloat)).bernoulli_(1.0 - p);
        keep.div_(1.0 - p);
      }
      return internal::BiasDropPathResidualCuda(input, z, pwconv2->bias, keep);
    }
    x = (z + pwconv2->bias).permute({0, 3, 1, 2});
    drop_path->train(is_training());
    return input + drop_path->forward(x);
  }
  x = BranchNHWC(x.permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
  drop_path->train(is_training());
  return input + drop_path->forward(x);
}

ConvNeXtV2Impl::ConvNeXtV2Impl(ConvNeXtV2Options options) : options(std::move(options)) {
  reset();
}

void InitConvAndLinear(nn::Module& module) {
  c10::NoGradGuard no_grad;
  for (const auto& m : module.modules(/*include_self=*/false)) {
    if (auto* conv = m->as<nn::Conv2d>()) {
      TruncNormal_(conv->weight, 0.0, 0.02);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* linear = m->as<nn::Linear>()) {
      TruncNormal_(linear->weight, 0.0, 0.02);
      if (linear->bias.defined()) linear->bias.zero_();
    }
  }
}

void BuildTrunk(nn::Module& owner, int64_t in_chans, const std::vector<int64_t>& depths,
                const std::vector<int64_t>& dims, double drop_path_rate, bool fused_grn,
                bool fused_dwconv, nn::ModuleList* downsample_layers, nn::ModuleList* stages) {
  *downsample_layers = owner.register_module("downsample_layers", nn::ModuleList());
  (*downsample_layers)->push_back(nn::Sequential(
      nn::Conv2d(nn::Conv2dOptions(in_chans, dims[0], 4).stride(4)),
      LayerNorm(LayerNormOptions(dims[0]).data_format(DataFormat::kChannelsFirst))));
  for (int i = 0; i < 3; ++i) {
    (*downsample_layers)->push_back(nn::Sequential(
        LayerNorm(LayerNormOptions(dims[i]).data_format(DataFormat::kChannelsFirst)),
        nn::Conv2d(nn::Conv2dOptions(dims[i], dims[i + 1], 2).stride(2))));
  }

  // Linear stochastic-depth schedule over all blocks, as torch.linspace(0, rate, sum(depths)).
  const int64_t total = std::accumulate(depths.begin(), depths.end(), int64_t{0});
  const at::Tensor rates = at::linspace(0.0, drop_path_rate, total);
  *stages = owner.register_module("stages", nn::ModuleList());
  int64_t cur = 0;
  for (int i = 0; i < 4; ++i) {
    nn::Sequential stage;
    for (int64_t j = 0; j < depths[i]; ++j) {
      stage->push_back(Block(BlockOptions(dims[i])
                                 .drop_path(rates[cur + j].item<double>())
                                 .fused_grn(fused_grn)
                                 .fused_dwconv(fused_dwconv)));
    }
    (*stages)->push_back(stage);
    cur += depths[i];
  }
}

void ConvNeXtV2Impl::reset() {
  const auto& depths = options.depths();
  const auto& dims = options.dims();
  TORCH_CHECK(depths.size() == 4 && dims.size() == 4,
              "ConvNeXtV2: depths and dims need 4 stages, got ", depths.size(), " and ",
              dims.size());
  TORCH_CHECK(options.num_classes() > 0, "ConvNeXtV2: num_classes must be positive");

  BuildTrunk(*this, options.in_chans(), depths, dims, options.drop_path_rate(),
             options.fused_grn(), options.fused_dwconv(), &downsample_layers, &stages);
  norm = register_module("norm", LayerNorm(LayerNormOptions(dims[3])));
  head = register_module("head", nn::Linear(dims[3], options.num_classes()));

  InitConvAndLinear(*this);
  c10::NoGradGuard no_grad;
  head->weight.mul_(options.head_init_scale());
  head->bias.mul_(options.head_init_scale());
  // Convolution weights in channels_last too, so the convolutions never convert layouts.
  for (at::Tensor& p : parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

at::Tensor ConvNeXtV2Impl::forward_features(const at::Tensor& input) {
  at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  for (size_t i = 0; i < 4; ++i) {
    x = downsample_layers[i]->as<nn::Sequential>()->forward(x);
    x = stages[i]->as<nn::Sequential>()->forward(x);
  }
  return norm->forward(x.mean({-2, -1}));
}

at::Tensor ConvNeXtV2Impl::forward(const at::Tensor& x) {
  return head->forward(forward_features(x));
}

}  // namespace convnextv2::models
