"""Side-by-side loader comparison: runs loader_bench (convnextv2) and torchvision_loader_bench.py
alternately on the same folder with the same worker count, batch size and batch count, and
prints every run, the medians and the median of the per-round ratios (the machine may be shared:
alternating rounds see the same load).

  bazel build -c opt //tools/bench:loader_bench
  bazel run -c opt //tools/bench:make_image_folder -- --out=/tmp/fake --images=1000 --splits=
  /usr/bin/python3 tools/bench/loader_compare.py --data=/tmp/fake --workers=2 --rounds=5
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def images_per_second(cmd, label):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(label + r".*?: ([0-9.]+) images/s", out)
    if not m:
        sys.exit("no '%s' figure in the output of %s:\n%s" % (label, " ".join(cmd), out))
    return float(m.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bench", default="bazel-bin/tools/bench/loader_bench",
                   help="the built loader_bench binary")
    p.add_argument("--data", required=True, help="an ImageFolder (make_image_folder)")
    p.add_argument("--workers", type=int, default=2, help="threads / worker processes")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=8, help="timed batches per run")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    common = ["--data=" + a.data, "--batch=%d" % a.batch, "--batches=%d" % a.batches]
    ours_cmd = [a.bench, "--threads=%d" % a.workers, "--variants=dct"] + common
    tv_cmd = [sys.executable, os.path.join(HERE, "torchvision_loader_bench.py"),
              "--workers=%d" % a.workers] + common
    ours, tv, ratios = [], [], []
    for r in range(a.rounds):
        o = images_per_second(ours_cmd, "convnextv2 loader")
        t = images_per_second(tv_cmd, "torchvision loader")
        ours.append(o)
        tv.append(t)
        ratios.append(o / t)
        print("round %d: convnextv2 %.1f images/s, torchvision %.1f images/s, ratio %.2f" %
              (r + 1, o, t, o / t), flush=True)
    print("median: convnextv2 %.1f images/s, torchvision %.1f images/s, ratio %.2f "
          "(%d workers, batch %d, %d batches, %d rounds)" %
          (statistics.median(ours), statistics.median(tv), statistics.median(ratios),
           a.workers, a.batch, a.batches, a.rounds))


if __name__ == "__main__":
    main()
