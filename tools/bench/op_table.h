// The per-op table of a ConvNeXt V2 training step: forward and backward time of each op kind of
// the blocks (depthwise conv, LayerNorm, the two Linears, GELU, GRN, residual add), of the stem
// and downsampling layers and of the AdamW step, with each op's FLOPs and bytes and its share of
// the roofline bound (roofline.h). Each op is timed on its own, on the shapes and with the
// modules (weights, fused/plain paths) of the model, and summed over the blocks of each stage:
// the sum differs from the step time by what the table leaves out (head, loss, autograd engine,
// the gradient accumulation into .grad) and by cache effects between ops.
//
//   OpTableOptions options;  // batch 128, 32 px, float32
//   PrintOpTable(model, options, MeasureMachine(/*threads=*/2), step_ms);
#ifndef TOOLS_BENCH_OP_TABLE_H_
#define TOOLS_BENCH_OP_TABLE_H_

#include "convnextv2/models/convnextv2.h"
#include "tools/bench/roofline.h"

namespace convnextv2::bench {

struct OpTableOptions {
  int batch = 128;
  int size = 32;
  bool amp = false;  // ops under bfloat16 autocast, activations bf16 (2 bytes an element)
  int reps = 5;      // timed repetitions of each op (median)
};

// Prints the machine's peaks, the active own-kernel build (cpu_kernels.h) and the table
// (markdown) to stdout.
void PrintOpTable(models::ConvNeXtV2& model, const OpTableOptions& options,
                  const Machine& machine, double step_ms);

}  // namespace convnextv2::bench

#endif  // TOOLS_BENCH_OP_TABLE_H_
