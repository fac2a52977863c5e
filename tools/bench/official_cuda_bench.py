#!/usr/bin/env python3
"""Training img/s of the official ConvNeXt V2 architecture on a CUDA GPU, PyTorch eager and
torch.compile, for the side-by-side in tools/cuda/device_check.sh (beside
//tools/bench:cuda_train_bench, this toolkit's figure).

The model is official_convnextv2.py beside this file (the official models/convnextv2.py
transcribed), so it runs on the GPU machine's PyTorch without the repository or timm. The step
is what its engine_finetune.py runs with --use_amp on Hopper as the README recommends: autocast
(bfloat16), channels-last, AdamW (fused), cross-entropy with label smoothing 0.1, drop_path 0.1.

    python3 tools/bench/official_cuda_bench.py --model convnextv2_tiny --batch 128 --mode both

Output lines: "official <model> b<batch> <eager|compile> <img/s> img/s <ms> ms/step".

--device cpu runs the step on the CPU in float32 (no autocast, no fused AdamW: Debian's
PyTorch 1.13 supports neither there for this model), so that //tests/cuda:official_cuda_bench_test
can check the script on a machine without a GPU; its figures mean nothing.
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

def median_step_ms(model_name, batch, size, mode, steps, warmup, classes, device="cuda"):
    torch.manual_seed(0)
    cuda = device == "cuda"
    model = create(model_name, classes, drop_path_rate=0.1).to(device)
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if cuda else {}))
    x = torch.randn(batch, 3, size, size, device=device).contiguous(
        memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device=device)
    step_model = torch.compile(model) if mode == "compile" else model

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=cuda):
            logits = step_model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=0.1)
        loss.backward()
        opt.step()

    def sync():
        if cuda:
            torch.cuda.synchronize()

    times = []
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
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
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                        help="cpu: only to check this script where there is no GPU")
    args = parser.parse_args()
    if args.steps <= 0 or args.batch <= 0 or args.size <= 0 or args.warmup < 1:
        sys.exit("official_cuda_bench.py: --steps, --batch, --size and --warmup must be positive")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("official_cuda_bench.py: no CUDA device (torch.cuda.is_available() is False)")
    if args.mode != "eager" and not hasattr(torch, "compile"):
        sys.exit("official_cuda_bench.py: torch %s has no torch.compile; use --mode eager"
                 % torch.__version__)
    modes = ["eager", "compile"] if args.mode == "both" else [args.mode]
    for mode in modes:
        ms = median_step_ms(args.model, args.batch, args.size, mode, args.steps, args.warmup,
                            args.classes, args.device)
        precision = "bfloat16" if args.device == "cuda" else "float32"
        print("official %s b%d %s %.0f img/s %.1f ms/step (torch %s, %s, channels-last, "
              "%dx%d, %s)" % (args.model, args.batch, mode, 1000.0 * args.batch / ms, ms,
                              torch.__version__, precision, args.size, args.size, args.device),
              flush=True)


if __name__ == "__main__":
    main()
