"""torchvision's equivalent of loader_bench: ImageFolder + DataLoader with the same train
transforms (RandomResizedCrop 224 bicubic, flip, RandAugment(2 ops, magnitude 9), ToTensor,
Normalize, RandomErasing 0.25 with per-pixel noise), images/s over --batches batches.

timm is not installed here, so torchvision's RandAugment stands in for timm's
rand-m9-mstd0.5-inc1 (same op family and count; slightly different op list).

  /usr/bin/python3 tools/bench/torchvision_loader_bench.py --data=/tmp/fake --workers=2
"""
import argparse
import time

import torch
from torchvision import datasets, transforms


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--size", type=int, default=224)
    a = p.parse_args()
    torch.set_num_threads(1)
    bicubic = transforms.InterpolationMode.BICUBIC
    t = transforms.Compose([
        transforms.RandomResizedCrop(a.size, interpolation=bicubic),
        transforms.RandomHorizontalFlip(),
        transforms.RandAugment(num_ops=2, magnitude=9, interpolation=bicubic,
                               fill=[124, 116, 104]),
        transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        transforms.RandomErasing(p=0.25, value="random"),
    ])
    ds = datasets.ImageFolder(a.data, transform=t)
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True,
                                         num_workers=a.workers, drop_last=True,
                                         persistent_workers=a.workers > 0)
    it = iter(loader)
    next(it)  # warm up workers
    start = time.perf_counter()
    n = 0
    for _ in range(a.batches):
        x, _ = next(it)
        n += x.shape[0]
    s = time.perf_counter() - start
    print("%s: %d images, %d workers, batch %d, %d batches, size %d" %
          (a.data, len(ds), a.workers, a.batch, a.batches, a.size))
    print("torchvision loader: %.1f images/s" % (n / s))


if __name__ == "__main__":
    main()
