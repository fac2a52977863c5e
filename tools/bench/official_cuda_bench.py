#!/usr/bin/env python3
"""Training img/s of the official ConvNeXt V2 architecture on a CUDA GPU, PyTorch eager and
torch.compile, for the side-by-side in tools/cuda/device_check.sh (beside
//tools/bench:cuda_train_bench, this toolkit's figure).

The model is official_convnextv2.py beside this file (the official models/convnextv2.py
transcribed), so it runs on the GPU machine's PyTorch without the repository or timm. The step is what its
engine_finetune.py runs with --use_amp on Hopper as the README recommends: autocast (bfloat16),
channels-last, AdamW (fused), cross-entropy with label smoothing 0.1, drop_path 0.1.

    python3 tools/bench/official_cuda_bench.py --model convnextv2_tiny --batch 128 --mode both

Output lines: "official <model> b<batch> <eager|compile> <img/s> img/s <ms> ms/step".
"""
import argparse
import statistics
import sys
import time

import os

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from official_convnextv2 import VARIANTS, create  # noqa: E402

def median_step_ms(model_name, batch, size, mode, steps, warmup, classes):
    torch.manual_seed(0)
    model = create(model_name, classes, drop_path_rate=0.1).cuda()
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randn(batch, 3, size, size, device="cuda").contiguous(
        memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device="cuda")
    step_model = torch.compile(model) if mode == "compile" else model

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = step_model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=0.1)
        loss.backward()
        opt.step()

    times = []
    for i in range(warmup + steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        if i >= warmup:
            times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convnextv2_atto", choices=sorted(VARIANTS))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed steps first (torch.compile compiles in the first)")
    parser.add_argument("--mode", default="both", choices=["eager", "compile", "both"])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("official_cuda_bench.py: no CUDA device (torch.cuda.is_available() is False)")
    if args.steps <= 0 or args.batch <= 0 or args.size <= 0 or args.warmup < 1:
        sys.exit("official_cuda_bench.py: --steps, --batch, --size and --warmup must be positive")
    modes = ["eager", "compile"] if args.mode == "both" else [args.mode]
    for mode in modes:
        ms = median_step_ms(args.model, args.batch, args.size, mode, args.steps, args.warmup,
                            args.classes)
        print("official %s b%d %s %.0f img/s %.1f ms/step (torch %s, bfloat16, channels-last, "
              "%dx%d)" % (args.model, args.batch, mode, 1000.0 * args.batch / ms, ms,
                          torch.__version__, args.size, args.size), flush=True)


if __name__ == "__main__":
    main()
