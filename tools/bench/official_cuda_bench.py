#!/usr/bin/env python3
"""Training and inference speed of the official ConvNeXt V2 architecture in PyTorch: on a CUDA
GPU for tools/cuda/device_check.sh (beside //tools/bench:cuda_train_bench), and on the CPU for
tools/bench/peer_compare.py (beside //tools/bench:train_step_bench and :infer_bench).

The model is official_convnextv2.py beside this file (the official models/convnextv2.py
transcribed), so it runs on any PyTorch without the repository or timm. The training step is what
its engine_finetune.py runs: autocast around the forward pass (bfloat16 by default on CUDA, as
--use_amp on Hopper; float32 by default on the CPU), AdamW (fused on CUDA), cross-entropy with
label smoothing 0.1, drop_path 0.1 unless --drop_path says otherwise.

    python3 tools/bench/official_cuda_bench.py --model convnextv2_tiny --batch 128 --mode both
    peer-python tools/bench/official_cuda_bench.py --device cpu --precision bfloat16 \\
        --layout contiguous --mode compile --batch 128 --size 32 --classes 10
    peer-python tools/bench/official_cuda_bench.py --device cpu --task infer --mode onnxruntime

Output lines: "official <model> b<batch> <mode> <img/s> img/s <ms> ms/step (torch <v>,
<precision>, <layout>, <S>x<S>, <device>)"; --task infer prints "ms/batch" and then
"agreement <mode>: max |logit - eager float32| <d> (tolerance <t>)", exiting 3 when the
outputs disagree. Modes: eager, compile (torch.compile, --compile_mode), both (eager then
compile), onnxruntime (inference only: the torch.onnx export, float32).

Debian's PyTorch 1.13 has no torch.compile and, for this model, no CPU autocast or fused AdamW:
there only --mode eager with float32 works; //tests/cuda:official_cuda_bench_test checks this
script with it.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from official_convnextv2 import VARIANTS, create  # noqa: E402

# Largest |logit| difference to eager float32 that still counts as the same output, per
# precision of the timed mode (bf16 keeps 8 bits of mantissa).
TOLERANCE = {"float32": 2e-3, "bfloat16": 0.25}


def precision_of(args):
    if args.precision != "auto":
        return args.precision
    return "bfloat16" if args.device == "cuda" else "float32"


def build(args, classes, train):
    """The model (seed 0 weights), an input and labels, in the requested layout."""
    torch.manual_seed(0)
    model = create(args.model, classes, drop_path_rate=args.drop_path if train else 0.0)
    model = model.to(args.device).train(train)
    x = torch.randn(args.batch, 3, args.size, args.size, device=args.device)
    if args.layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (args.batch,), device=args.device)
    return model, x, y


def compiled(model, args):
    if args.compile_mode == "default":
        return torch.compile(model)
    return torch.compile(model, mode=args.compile_mode)


def timed(fn, steps, warmup, sync):
    times = []
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        if i >= warmup:
            times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def sync_of(device):
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def train_step_ms(args, mode):
    cuda = args.device == "cuda"
    model, x, y = build(args, args.classes, train=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if cuda else {}))
    step_model = compiled(model, args) if mode == "compile" else model
    bf16 = precision_of(args) == "bfloat16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=bf16):
            logits = step_model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=args.label_smoothing)
        loss.backward()
        opt.step()

    return timed(step, args.steps, args.warmup, sync_of(args.device))


def onnx_session(model, x, threads):
    """onnxruntime on the float32 model exported by torch.onnx (the TorchScript exporter)."""
    import onnxruntime as ort
    path = os.path.join(tempfile.mkdtemp(prefix="official_onnx_"), "model.onnx")
    torch.onnx.export(model, (x.contiguous(),), path, dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["logits"])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads if threads > 0 else torch.get_num_threads()
    so.inter_op_num_threads = 1
    session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {"x": x.contiguous().cpu().numpy()}
    return lambda: torch.from_numpy(session.run(None, feed)[0])


def infer_ms(args, mode):
    """Median ms of a no-grad forward pass and the outputs' largest difference to eager fp32."""
    model, x, _ = build(args, args.classes, train=False)
    with torch.no_grad():
        reference = model.float()(x).float().cpu()
        if mode == "onnxruntime":
            if precision_of(args) != "float32":
                sys.exit("official_cuda_bench.py: onnxruntime runs float32 only")
            run = onnx_session(model, x, args.threads)
        else:
            fwd = compiled(model, args) if mode == "compile" else model
            bf16 = precision_of(args) == "bfloat16"

            def run():
                with torch.autocast(args.device, dtype=torch.bfloat16, enabled=bf16):
                    return fwd(x)
        out = run()
        diff = (out.float().cpu() - reference).abs().max().item()
        return timed(run, args.steps, args.warmup, sync_of(args.device)), diff


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convnextv2_atto", choices=sorted(VARIANTS))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed steps first (torch.compile compiles in the first)")
    parser.add_argument("--task", default="train", choices=["train", "infer"],
                        help="infer: eval mode, no grad, forward pass only")
    parser.add_argument("--mode", default="both",
                        choices=["eager", "compile", "both", "onnxruntime"])
    parser.add_argument("--compile_mode", default="default",
                        choices=["default", "max-autotune", "reduce-overhead"],
                        help="torch.compile mode= (max-autotune takes minutes on 2 cores)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="autocast dtype; auto: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--layout", default="channels_last",
                        choices=["channels_last", "contiguous"], help="memory format")
    parser.add_argument("--drop_path", type=float, default=0.1)
    parser.add_argument("--label_smoothing", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch.set_num_threads (0: PyTorch's default)")
    args = parser.parse_args()
    if args.steps <= 0 or args.batch <= 0 or args.size <= 0 or args.warmup < 1:
        sys.exit("official_cuda_bench.py: --steps, --batch, --size and --warmup must be positive")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("official_cuda_bench.py: no CUDA device (torch.cuda.is_available() is False)")
    if args.mode in ("compile", "both") and not hasattr(torch, "compile"):
        sys.exit("official_cuda_bench.py: torch %s has no torch.compile; use --mode eager"
                 % torch.__version__)
    if args.mode == "onnxruntime" and (args.task != "infer" or args.device != "cpu"):
        sys.exit("official_cuda_bench.py: --mode onnxruntime needs --task infer --device cpu")
    return args


def main():
    args = parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    modes = ["eager", "compile"] if args.mode == "both" else [args.mode]
    for mode in modes:
        label = mode if args.compile_mode == "default" or mode != "compile" else \
            "compile-" + args.compile_mode
        if args.task == "train":
            ms, diff, unit = train_step_ms(args, mode), None, "step"
        else:
            (ms, diff), unit = infer_ms(args, mode), "batch"
        layout = "channels-last" if args.layout == "channels_last" else "contiguous"
        print("official %s b%d %s %.0f img/s %.1f ms/%s (torch %s, %s, %s, %dx%d, %s)" %
              (args.model, args.batch, label, 1000.0 * args.batch / ms, ms, unit,
               torch.__version__, precision_of(args), layout, args.size, args.size,
               args.device), flush=True)
        if diff is not None:
            tol = TOLERANCE[precision_of(args)]
            print("agreement %s: max |logit - eager float32| %.2e (tolerance %.2g)" %
                  (label, diff, tol), flush=True)
            if not diff <= tol:
                sys.exit(3)


if __name__ == "__main__":
    main()
