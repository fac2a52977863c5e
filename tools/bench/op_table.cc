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

namespace convnextv2::bench {
namespace {

using Op = std::function<at::Tensor()>;

struct Cost {
  double ms = 0, flops = 0, bytes = 0;
};

// One table row: an op kind's forward and backward, summed over the stages' blocks.
struct Row {
  Cost fwd, bwd;
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

// Median forward and backward milliseconds of `op` (which reads `leaves`); backward is
// autograd::grad of a fixed random output gradient with respect to `leaves`.
std::pair<double, double> TimeOp(const Op& op, const std::vector<at::Tensor>& leaves, int reps) {
  const double fwd = Ms([&] { op(); }, reps);
  const at::Tensor y = op();
  const at::Tensor g = at::randn_like(y);
  const double bwd =
      Ms([&] { torch::autograd::grad({y}, leaves, {g}, /*retain_graph=*/true); }, reps);
  return {fwd, bwd};
}

void Add(Row& row, std::pair<double, double> ms, double times, double fwd_flops,
         double fwd_bytes, double bwd_flops, double bwd_bytes) {
  row.fwd.ms += ms.first * times;
  row.bwd.ms += ms.second * times;
  row.fwd.flops += fwd_flops * times;
  row.fwd.bytes += fwd_bytes * times;
  row.bwd.flops += bwd_flops * times;
  row.bwd.bytes += bwd_bytes * times;
}

// Taps of a k x k stride-1 "same" convolution that land inside an n-pixel line, summed over it.
double TapsInside(int64_t n, int64_t k) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    s += std::min<int64_t>(k, n + k / 2 - i) - std::max<int64_t>(0, k / 2 - i);
  }
  return s;
}

at::Tensor Leaf(at::IntArrayRef shape, bool channels_last) {
  at::Tensor t = at::randn(shape);
  if (channels_last) t = t.contiguous(at::MemoryFormat::ChannelsLast);
  return t.requires_grad_();
}

// The ops of one block of `stage` (its first block stands for all: same shapes and kernels).
void MeasureBlock(models::BlockImpl& block, int64_t n, int64_t hw, int64_t depth, int reps,
                  std::map<std::string, Row>& rows) {
  const int64_t c = block.options.dim(), m = n * hw * hw;
  const double e = static_cast<double>(m) * c, e4 = 4 * e;
  const int64_t k = block.dwconv->weight.size(2);
  const at::Tensor x = Leaf({n, c, hw, hw}, true);
  const double dw = 2.0 * n * c * TapsInside(hw, k) * TapsInside(hw, k);
  Add(rows["depthwise conv 7x7"],
      TimeOp([&] { return block.DepthwiseConv(x); }, {x, block.dwconv->weight}, reps), depth, dw,
      8 * e, 2 * dw, 12 * e);
  const at::Tensor xn = Leaf({n, hw, hw, c}, false);
  Add(rows["LayerNorm"], TimeOp([&] { return block.norm->forward(xn); }, {xn}, reps), depth,
      7 * e, 8 * e, 11 * e, 12 * e);
  const double gemm = 2.0 * m * c * 4 * c, w = 4.0 * 4 * c * c;
  Add(rows["Linear C->4C"],
      TimeOp([&] { return block.pwconv1->forward(xn); }, {xn, block.pwconv1->weight}, reps),
      depth, gemm, 4 * (e + e4) + w, 2 * gemm, 4 * (e4 + 2 * e) + 2 * w);
  const at::Tensor h = Leaf({n, hw, hw, 4 * c}, false);
  Add(rows["GELU"], TimeOp([&] { return at::gelu(h); }, {h}, reps), depth, 20 * e4, 8 * e4,
      25 * e4, 12 * e4);
  Add(rows["GRN"], TimeOp([&] { return block.grn->forward(h); }, {h, block.grn->gamma}, reps),
      depth, 5 * e4, 8 * e4, 7 * e4, 12 * e4);
  Add(rows["Linear 4C->C"],
      TimeOp([&] { return block.pwconv2->forward(h); }, {h, block.pwconv2->weight}, reps),
      depth, gemm, 4 * (e + e4) + w, 2 * gemm, 4 * (e + 2 * e4) + 2 * w);
  // Forward: input + branch; backward: the sum of the two gradients where the input forks.
  const at::Tensor r = Leaf({n, c, hw, hw}, true);
  const double add_ms = Ms([&] { return x + r; }, reps);
  Add(rows["residual add"], {add_ms, add_ms}, depth, e, 12 * e, e, 12 * e);
}

void MeasureDownsample(torch::nn::SequentialImpl& layer, int64_t n, int64_t cin, int64_t hw_in,
                       int64_t cout, int64_t stride, int reps, std::map<std::string, Row>& rows) {
  const at::Tensor x = Leaf({n, cin, hw_in, hw_in}, true);
  const int64_t hw_out = hw_in / stride;
  const double conv = 2.0 * n * hw_out * hw_out * cout * cin * stride * stride;
  const double bytes = 4.0 * n * (cin * hw_in * hw_in + cout * hw_out * hw_out);
  std::vector<at::Tensor> leaves{x};
  for (const at::Tensor& p : layer.parameters()) leaves.push_back(p);
  Add(rows[stride == 4 ? "stem (conv 4x4, LN)" : "downsample (LN, conv 2x2)"],
      TimeOp([&] { return layer.forward(x); }, leaves, reps), 1, conv, 2 * bytes, 2 * conv,
      3 * bytes);
}

double AdamWMs(models::ConvNeXtV2& model, int batch, int size, int reps, double* params) {
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  at::cross_entropy_loss(model->forward(at::randn({batch, 3, size, size})),
                         at::zeros({batch}, at::kLong))
      .backward();
  *params = 0;
  for (const at::Tensor& p : model->parameters()) *params += p.numel();
  return Ms([&] { opt.step(); }, reps);
}

void PrintRow(const std::string& name, const char* pass, const Cost& cost, const Machine& mc,
              Cost* total, double* bound_total) {
  const double bound_ms = 1e3 * RooflineSeconds(mc, cost.flops, cost.bytes, false);
  std::printf("| %s | %s | %.2f | %.3f | %.1f | %.1f | %.1f | %.2f | %.0f%% |\n", name.c_str(),
              pass, cost.ms, cost.flops / 1e9, cost.bytes / 1e6, cost.flops / cost.ms / 1e6,
              cost.bytes / cost.ms / 1e6, bound_ms, 100 * bound_ms / cost.ms);
  total->ms += cost.ms;
  total->flops += cost.flops;
  total->bytes += cost.bytes;
  *bound_total += bound_ms;
}

}  // namespace

void PrintOpTable(models::ConvNeXtV2& model, int batch, int size, const Machine& mc,
                  double step_ms, int reps) {
  std::printf("machine (%d threads, %s): fp32 FMA %.1f GFLOP/s, bf16 dot %.1f GFLOP/s, "
              "triad %.1f GB/s (DRAM), %.1f GB/s (in %.0f MiB LLC)\n",
              mc.threads, mc.isa.c_str(), mc.fp32_flops / 1e9, mc.bf16_flops / 1e9,
              mc.dram_bytes / 1e9, mc.cache_bytes / 1e9, mc.llc_size / (1 << 20));
  std::map<std::string, Row> rows;
  const auto& depths = model->options.depths();
  const auto& dims = model->options.dims();
  int64_t hw = size / 4;
  for (size_t s = 0; s < 4; ++s) {
    torch::nn::SequentialImpl& seq = *model->downsample_layers[s]->as<torch::nn::Sequential>();
    if (s == 0) {
      MeasureDownsample(seq, batch, 3, size, dims[0], 4, reps, rows);
    } else {
      MeasureDownsample(seq, batch, dims[s - 1], hw * 2, dims[s], 2, reps, rows);
    }
    auto* block = model->stages[s]->as<torch::nn::Sequential>()->ptr(0)->as<models::Block>();
    MeasureBlock(*block, batch, hw, depths[s], reps, rows);
    hw /= 2;
  }
  double params = 0;
  const double adam_ms = AdamWMs(model, batch, size, reps, &params);
  std::printf("\n| op | pass | ms | GFLOP | MB | GFLOP/s | GB/s | roofline ms | roofline / time "
              "|\n|---|---|---|---|---|---|---|---|---|\n");
  Cost total;
  double bound = 0;
  for (const auto& [name, row] : rows) {
    PrintRow(name, "fwd", row.fwd, mc, &total, &bound);
    PrintRow(name, "bwd", row.bwd, mc, &total, &bound);
  }
  PrintRow("AdamW", "step", Cost{adam_ms, 18 * params, 28 * params}, mc, &total, &bound);
  std::printf("| **sum of the rows** | | %.1f | %.3f | %.1f | | | %.1f | %.0f%% |\n", total.ms,
              total.flops / 1e9, total.bytes / 1e6, bound, 100 * bound / total.ms);
  std::printf("| **training step (measured)** | | %.1f | | | | | %.1f | %.0f%% |\n", step_ms,
              bound, 100 * bound / step_ms);
}

}  // namespace convnextv2::bench
