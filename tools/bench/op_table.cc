#include "tools/bench/op_table.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "convnextv2/models/cpu_kernels.h"
#include "convnextv2/models/layers.h"
#include "convnextv2/train/amp.h"

namespace convnextv2::bench {
namespace {

using Op = std::function<at::Tensor()>;

struct Cost {
  double ms = 0, flops = 0, bytes = 0;
};

// FLOPs and bytes of one op's forward and backward.
struct Work {
  double fwd_flops, fwd_bytes, bwd_flops, bwd_bytes;
};

// One table row: an op kind's forward and backward, summed over the stages' blocks; `gemm`:
// a matrix product (under --amp its bound is the bf16 peak where the machine has one).
struct Row {
  Cost fwd, bwd;
  bool gemm = false;
};

// The step the table describes.
struct Shape {
  int64_t batch;
  bool amp;
  at::ScalarType act;  // activations' dtype: float32, or bfloat16 under --amp
  double bytes;        // bytes per activation element
  int reps;
};

double Ms(const std::function<void()>& f, int reps) {
  std::vector<double> t;
  for (int i = 0; i <= reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) t.push_back(ms);  // the first run warms up
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Median forward and backward milliseconds of `op` (which reads `leaves`), forward under
// bfloat16 autocast with --amp; backward is autograd::grad of a fixed random output gradient
// with respect to `leaves`.
std::pair<double, double> TimeOp(const Op& op, const std::vector<at::Tensor>& leaves,
                                 const Shape& s) {
  const auto forward = [&] {
    train::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16, s.amp);
    return op();
  };
  const double fwd = Ms([&] { forward(); }, s.reps);
  const at::Tensor y = forward();
  const at::Tensor g = at::randn_like(y);
  const double bwd =
      Ms([&] { torch::autograd::grad({y}, leaves, {g}, /*retain_graph=*/true); }, s.reps);
  return {fwd, bwd};
}

void Add(Row& row, std::pair<double, double> ms, double times, const Work& w, bool gemm = false) {
  row.fwd.ms += ms.first * times;
  row.bwd.ms += ms.second * times;
  row.fwd.flops += w.fwd_flops * times;
  row.fwd.bytes += w.fwd_bytes * times;
  row.bwd.flops += w.bwd_flops * times;
  row.bwd.bytes += w.bwd_bytes * times;
  row.gemm = gemm;
}

// Taps of a k x k stride-1 "same" convolution that land inside an n-pixel line, summed over it.
double TapsInside(int64_t n, int64_t k) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    s += std::min<int64_t>(k, n + k / 2 - i) - std::max<int64_t>(0, k / 2 - i);
  }
  return s;
}

at::Tensor Leaf(at::IntArrayRef shape, bool channels_last, at::ScalarType dtype) {
  at::Tensor t = at::randn(shape).to(dtype);
  if (channels_last) t = t.contiguous(at::MemoryFormat::ChannelsLast);
  return t.requires_grad_();
}

// The ops of one block of `stage` (its first block stands for all: same shapes and kernels),
// each as the block runs it: with fused_grn the first Linear without its bias and GELU + GRN
// as one node (GeluGrnFused), else Linear, GELU and GRN apart. Activations are `act` (float32,
// or bfloat16 under --amp, where autocast's conv2d and linear produce bf16) of `bytes` each.
void MeasureBlock(models::BlockImpl& block, const Shape& s, int64_t hw, int64_t depth,
                  std::map<std::string, Row>& rows) {
  const int64_t c = block.options.dim(), m = s.batch * hw * hw;
  const double e = static_cast<double>(m) * c, e4 = 4 * e, b = s.bytes;
  const int64_t k = block.dwconv->weight.size(2);
  const at::Tensor x = Leaf({s.batch, c, hw, hw}, true, s.act);
  const double dw = 2.0 * s.batch * c * TapsInside(hw, k) * TapsInside(hw, k);
  Add(rows["depthwise conv 7x7"],
      TimeOp([&] { return block.DepthwiseConv(x); }, {x, block.dwconv->weight}, s), depth,
      {dw, 2 * b * e, 2 * dw, 3 * b * e});
  const at::Tensor xn = Leaf({s.batch, hw, hw, c}, false, s.act);
  Add(rows["LayerNorm"], TimeOp([&] { return block.norm->forward(xn); }, {xn}, s), depth,
      {7 * e, 2 * b * e, 11 * e, 3 * b * e});
  const double gemm = 2.0 * m * c * 4 * c, w = 4.0 * 4 * c * c;
  const at::Tensor h = Leaf({s.batch, hw, hw, 4 * c}, false, s.act);
  if (block.options.fused_grn()) {
    Add(rows["Linear C->4C"],
        TimeOp([&] { return at::linear(xn, block.pwconv1->weight); },
               {xn, block.pwconv1->weight}, s),
        depth, {gemm, b * (e + e4) + w, 2 * gemm, b * (e4 + 2 * e) + 2 * w}, true);
    // Forward: GELU and its square (about 25 FLOPs), the GRN (5); reads h, writes u and y.
    // Backward: reads g, h, u, writes dh.
    Add(rows["GELU + GRN (fused)"],
        TimeOp([&] {
          return models::GeluGrnFused(h, block.pwconv1->bias, block.grn->gamma, block.grn->beta,
                                      block.grn->options.eps());
        }, {h, block.grn->gamma}, s),
        depth, {30 * e4, 3 * b * e4, 40 * e4, 4 * b * e4});
  } else {
    Add(rows["Linear C->4C"],
        TimeOp([&] { return block.pwconv1->forward(xn); }, {xn, block.pwconv1->weight}, s),
        depth, {gemm, b * (e + e4) + w, 2 * gemm, b * (e4 + 2 * e) + 2 * w}, true);
    Add(rows["GELU"], TimeOp([&] { return at::gelu(h); }, {h}, s), depth,
        {20 * e4, 2 * b * e4, 25 * e4, 3 * b * e4});
    Add(rows["GRN"], TimeOp([&] { return block.grn->forward(h); }, {h, block.grn->gamma}, s),
        depth, {5 * e4, 2 * b * e4, 7 * e4, 3 * b * e4});
  }
  Add(rows["Linear 4C->C"],
      TimeOp([&] { return block.pwconv2->forward(h); }, {h, block.pwconv2->weight}, s), depth,
      {gemm, b * (e + e4) + w, 2 * gemm, b * (e + 2 * e4) + 2 * w}, true);
  // Forward: input + branch; backward: the sum of the two gradients where the input forks.
  const at::Tensor r = Leaf({s.batch, c, hw, hw}, true, s.act);
  const double add_ms = Ms([&] { return x + r; }, s.reps);
  Add(rows["residual add"], {add_ms, add_ms}, depth, {e, 3 * b * e, e, 3 * b * e});
}

void MeasureDownsample(torch::nn::SequentialImpl& layer, const Shape& s, int64_t cin,
                       int64_t hw_in, int64_t cout, int64_t stride,
                       std::map<std::string, Row>& rows) {
  // The stem reads the float32 images; the downsampling layers the previous stage's output.
  const at::Tensor x = Leaf({s.batch, cin, hw_in, hw_in}, true, stride == 4 ? at::kFloat : s.act);
  const int64_t hw_out = hw_in / stride;
  const double conv = 2.0 * s.batch * hw_out * hw_out * cout * cin * stride * stride;
  const double bytes = s.bytes * s.batch * (cin * hw_in * hw_in + cout * hw_out * hw_out);
  std::vector<at::Tensor> leaves{x};
  for (const at::Tensor& p : layer.parameters()) leaves.push_back(p);
  Add(rows[stride == 4 ? "stem (conv 4x4, LN)" : "downsample (LN, conv 2x2)"],
      TimeOp([&] { return layer.forward(x); }, leaves, s), 1,
      {conv, 2 * bytes, 2 * conv, 3 * bytes}, true);
}

double AdamWMs(models::ConvNeXtV2& model, const Shape& s, int size, double* params) {
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  at::Tensor loss;
  {
    train::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16, s.amp);
    loss = at::cross_entropy_loss(model->forward(at::randn({s.batch, 3, size, size})),
                                  at::zeros({s.batch}, at::kLong));
  }
  loss.backward();
  *params = 0;
  for (const at::Tensor& p : model->parameters()) *params += p.numel();
  return Ms([&] { opt.step(); }, s.reps);
}

void PrintRow(const std::string& name, const char* pass, const Cost& cost, bool bf16,
              const Machine& mc, Cost* total, double* bound_total) {
  const double bound_ms = 1e3 * RooflineSeconds(mc, cost.flops, cost.bytes, bf16);
  std::printf("| %s | %s | %.2f | %.3f | %.1f | %.1f | %.1f | %.2f | %.0f%% |\n", name.c_str(),
              pass, cost.ms, cost.flops / 1e9, cost.bytes / 1e6, cost.flops / cost.ms / 1e6,
              cost.bytes / cost.ms / 1e6, bound_ms, 100 * bound_ms / cost.ms);
  total->ms += cost.ms;
  total->flops += cost.flops;
  total->bytes += cost.bytes;
  *bound_total += bound_ms;
}

}  // namespace

void PrintOpTable(models::ConvNeXtV2& model, const OpTableOptions& options, const Machine& mc,
                  double step_ms) {
  std::printf("machine (%d threads, %s): fp32 FMA %.1f GFLOP/s, bf16 dot %.1f GFLOP/s, "
              "triad %.1f GB/s (DRAM), %.1f GB/s (in %.0f MiB LLC); own CPU kernels: %s\n",
              mc.threads, mc.isa.c_str(), mc.fp32_flops / 1e9, mc.bf16_flops / 1e9,
              mc.dram_bytes / 1e9, mc.cache_bytes / 1e9, mc.llc_size / (1 << 20),
              models::internal::ActiveCpuKernels().name);
  const Shape s{options.batch, options.amp, options.amp ? at::kBFloat16 : at::kFloat,
                options.amp ? 2.0 : 4.0, options.reps};
  std::map<std::string, Row> rows;
  const auto& depths = model->options.depths();
  const auto& dims = model->options.dims();
  int64_t hw = options.size / 4;
  for (size_t i = 0; i < 4; ++i) {
    torch::nn::SequentialImpl& seq = *model->downsample_layers[i]->as<torch::nn::Sequential>();
    if (i == 0) {
      MeasureDownsample(seq, s, 3, options.size, dims[0], 4, rows);
    } else {
      MeasureDownsample(seq, s, dims[i - 1], hw * 2, dims[i], 2, rows);
    }
    auto* block = model->stages[i]->as<torch::nn::Sequential>()->ptr(0)->as<models::Block>();
    MeasureBlock(*block, s, hw, depths[i], rows);
    hw /= 2;
  }
  double params = 0;
  const double adam_ms = AdamWMs(model, s, options.size, &params);
  std::printf("\n| op | pass | ms | GFLOP | MB | GFLOP/s | GB/s | roofline ms | roofline / time "
              "|\n|---|---|---|---|---|---|---|---|---|\n");
  Cost total;
  double bound = 0;
  for (const auto& [name, row] : rows) {
    const bool bf16 = row.gemm && options.amp;
    PrintRow(name, "fwd", row.fwd, bf16, mc, &total, &bound);
    PrintRow(name, "bwd", row.bwd, bf16, mc, &total, &bound);
  }
  // AdamW: float32 parameters, gradients and both moments whatever the autocast.
  PrintRow("AdamW", "step", Cost{adam_ms, 18 * params, 28 * params}, false, mc, &total, &bound);
  std::printf("| **sum of the rows** | | %.1f | %.3f | %.1f | | | %.1f | %.0f%% |\n", total.ms,
              total.flops / 1e9, total.bytes / 1e6, bound, 100 * bound / total.ms);
  std::printf("| **training step (measured)** | | %.1f | | | | | %.1f | %.0f%% |\n", step_ms,
              bound, 100 * bound / step_ms);
}

}  // namespace convnextv2::bench
