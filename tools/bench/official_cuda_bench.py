#!/usr/bin/env python3
"""Training img/s of the official ConvNeXt V2 architecture on a CUDA GPU, PyTorch eager and
torch.compile, for the side-by-side in tools/cuda/device_check.sh (beside
//tools/bench:cuda_train_bench, this toolkit's figure).

The model is rebuilt here as facebookresearch/ConvNeXt-V2's models/convnextv2.py defines it
(LayerNorm in both formats, GRN, Block with DropPath, stem/downsample/stages, head), so it runs
on the GPU machine's PyTorch without the repository or timm. The step is what its
engine_finetune.py runs with --use_amp on Hopper as the README recommends: autocast (bfloat16),
channels-last, AdamW (fused), cross-entropy with label smoothing 0.1, drop_path 0.1.

    python3 tools/bench/official_cuda_bench.py --model convnextv2_tiny --batch 128 --mode both

Output lines: "official <model> b<batch> <eager|compile> <img/s> img/s <ms> ms/step".
"""
import argparse
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VARIANTS = {
    "convnextv2_atto": ([2, 2, 6, 2], [40, 80, 160, 320]),
    "convnextv2_femto": ([2, 2, 6, 2], [48, 96, 192, 384]),
    "convnextv2_pico": ([2, 2, 6, 2], [64, 128, 256, 512]),
    "convnextv2_nano": ([2, 2, 8, 2], [80, 160, 320, 640]),
    "convnextv2_tiny": ([3, 3, 9, 3], [96, 192, 384, 768]),
    "convnextv2_base": ([3, 3, 27, 3], [128, 256, 512, 1024]),
    "convnextv2_large": ([3, 3, 27, 3], [192, 384, 768, 1536]),
    "convnextv2_huge": ([3, 3, 27, 3], [352, 704, 1408, 2816]),
}


class LayerNorm(nn.Module):
    def __init__(self, normalized_shape, eps=1e-6, data_format="channels_last"):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))
        self.eps = eps
        self.data_format = data_format
        self.normalized_shape = (normalized_shape,)

    def forward(self, x):
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x):
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class DropPath(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = 1 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)


class Block(nn.Module):
    def __init__(self, dim, drop_path=0.0):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)
        x = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(x)))))
        x = x.permute(0, 3, 1, 2)
        return shortcut + self.drop_path(x)


class ConvNeXtV2(nn.Module):
    def __init__(self, depths, dims, num_classes=1000, drop_path_rate=0.0):
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(
            nn.Conv2d(3, dims[0], kernel_size=4, stride=4),
            LayerNorm(dims[0], eps=1e-6, data_format="channels_first")))
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                LayerNorm(dims[i], eps=1e-6, data_format="channels_first"),
                nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)))
        rates = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]
        self.stages = nn.ModuleList()
        cur = 0
        for i in range(4):
            self.stages.append(nn.Sequential(
                *[Block(dims[i], rates[cur + j]) for j in range(depths[i])]))
            cur += depths[i]
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
        return self.head(self.norm(x.mean([-2, -1])))


def median_step_ms(model_name, batch, size, mode, steps, warmup, classes):
    torch.manual_seed(0)
    depths, dims = VARIANTS[model_name]
    model = ConvNeXtV2(depths, dims, classes, drop_path_rate=0.1).cuda()
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
