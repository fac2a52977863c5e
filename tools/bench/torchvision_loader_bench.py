"""torchvision's equivalent of loader_bench: ImageFolder + DataLoader with the official train
transforms as timm's create_transform builds them (RandomResizedCrop 224 bicubic, flip 0.5,
RandAugment rand-m9-mstd0.5-inc1, ToTensor, Normalize, RandomErasing 0.25 with per-pixel noise),
images/s over --batches batches after one warm-up batch.

timm is not packaged for Debian, so TimmRandAugment below reproduces timm's rand-m9-mstd0.5-inc1
on PIL images (timm's op list, increasing variants, magnitude 9 with N(0, 0.5) noise, 2 ops drawn
with replacement, each applied with probability 0.5, the same PIL calls timm makes);
--torchvision_randaugment uses torchvision's RandAugment(2, 9) instead (every op applied).

  /usr/bin/python3 tools/bench/torchvision_loader_bench.py --data=/tmp/fake --workers=2
"""
import argparse
import random
import time

import torch
from PIL import Image, ImageEnhance, ImageOps
from torchvision import datasets, transforms

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class TimmRandAugment:
    """timm's RandAugment('rand-m9-mstd0.5-inc1') with bicubic geometric ops."""

    def __init__(self, magnitude=9.0, magnitude_std=0.5, num_layers=2, prob=0.5):
        self.magnitude, self.magnitude_std = magnitude, magnitude_std
        self.num_layers, self.prob = num_layers, prob
        self.fill = tuple(round(255 * m) for m in MEAN)
        self.kw = dict(resample=Image.BICUBIC, fillcolor=self.fill)
        self.ops = [self.auto_contrast, self.equalize, self.invert, self.rotate,
                    self.posterize_inc, self.solarize_inc, self.solarize_add, self.color_inc,
                    self.contrast_inc, self.brightness_inc, self.sharpness_inc, self.shear_x,
                    self.shear_y, self.translate_x_rel, self.translate_y_rel]

    @staticmethod
    def negate(v):
        return -v if random.random() > 0.5 else v

    def auto_contrast(self, img, m):
        return ImageOps.autocontrast(img)

    def equalize(self, img, m):
        return ImageOps.equalize(img)

    def invert(self, img, m):
        return ImageOps.invert(img)

    def rotate(self, img, m):
        return img.rotate(self.negate(30.0 * m / 10), **self.kw)

    def posterize_inc(self, img, m):
        bits = 4 - int(m / 10 * 4)
        if bits <= 0:  # keep no bits: black (PIL 11's posterize refuses 0, which older PILs took)
            return img.point([0] * 256 * len(img.getbands()))
        return img if bits >= 8 else ImageOps.posterize(img, bits)

    def solarize_inc(self, img, m):
        return ImageOps.solarize(img, 256 - int(m / 10 * 256))

    def solarize_add(self, img, m):
        add = int(m / 10 * 110)
        lut = [min(255, i + add) if i < 128 else i for i in range(256)]
        return img.point(lut * len(img.getbands()))

    def _enhance(self, cls, img, m):
        return cls(img).enhance(1.0 + self.negate(0.9 * m / 10))

    def color_inc(self, img, m):
        return self._enhance(ImageEnhance.Color, img, m)

    def contrast_inc(self, img, m):
        return self._enhance(ImageEnhance.Contrast, img, m)

    def brightness_inc(self, img, m):
        return self._enhance(ImageEnhance.Brightness, img, m)

    def sharpness_inc(self, img, m):
        return self._enhance(ImageEnhance.Sharpness, img, m)

    def shear_x(self, img, m):
        return img.transform(img.size, Image.AFFINE, (1, self.negate(0.3 * m / 10), 0, 0, 1, 0),
                             **self.kw)

    def shear_y(self, img, m):
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, self.negate(0.3 * m / 10), 1, 0),
                             **self.kw)

    def translate_x_rel(self, img, m):
        px = self.negate(0.45 * m / 10) * img.size[0]
        return img.transform(img.size, Image.AFFINE, (1, 0, px, 0, 1, 0), **self.kw)

    def translate_y_rel(self, img, m):
        px = self.negate(0.45 * m / 10) * img.size[1]
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, px), **self.kw)

    def __call__(self, img):
        for op in random.choices(self.ops, k=self.num_layers):
            if random.random() > self.prob:
                continue
            m = min(10.0, max(0.0, random.gauss(self.magnitude, self.magnitude_std)))
            img = op(img, m)
        return img


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--torchvision_randaugment", action="store_true",
                   help="torchvision's RandAugment(2, 9) instead of timm's policy")
    a = p.parse_args()
    torch.set_num_threads(1)
    bicubic = transforms.InterpolationMode.BICUBIC
    if a.torchvision_randaugment:
        ra = transforms.RandAugment(num_ops=2, magnitude=9, interpolation=bicubic,
                                    fill=[124, 116, 104])
    else:
        ra = TimmRandAugment()
    t = transforms.Compose([
        transforms.RandomResizedCrop(a.size, interpolation=bicubic),
        transforms.RandomHorizontalFlip(),
        ra,
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
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
    print("%s: %d images, %d workers, batch %d, %d batches, size %d, %s RandAugment" %
          (a.data, len(ds), a.workers, a.batch, a.batches, a.size,
           "torchvision" if a.torchvision_randaugment else "timm"))
    print("torchvision loader: %.1f images/s" % (n / s))


if __name__ == "__main__":
    main()
