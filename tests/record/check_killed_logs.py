"""Reads every metrics.h5 the kill tests kept, with h5py's plain (non-SWMR) open.

check_killed_logs.py DIR: DIR/index.txt has lines "FILE ROWS"; each FILE must open, hold
exactly ROWS training rows with the values tests/record/sample_rows.h computes, and the eval
rows that belong to them. Prints one line per failure and exits 1 if there was any.
"""
import math
import os
import sys

import h5py
import numpy as np


def check(path, rows):
    with h5py.File(path, "r") as f:
        steps = np.arange(rows, dtype=np.int64)
        got = f["train/step"][:]
        if not np.array_equal(got, steps):
            return "train/step is %s, want 0..%d" % (got[:5], rows - 1)
        for name, want in [("epoch", steps // 100),
                           ("loss", 2.0 / (steps + 1)),
                           ("lr", 1e-3 * steps),
                           ("min_lr", 1e-4 * steps),
                           ("images_per_second", 100.0 + steps),
                           ("wall_time", 0.25 * steps)]:
            if not np.array_equal(f["train/" + name][:], want):
                return "train/%s differs" % name
        if not all(math.isnan(v) for v in f["train/grad_norm"][:]):
            return "train/grad_norm is not all NaN"
        ev = steps[steps % 10 == 9]
        if not np.array_equal(f["eval/step"][:], ev):
            return "eval/step is %s, want %s" % (f["eval/step"][:], ev)
        if not np.array_equal(f["eval/acc1"][:], 50.0 + ev // 10):
            return "eval/acc1 differs"
        cfg = f.attrs["config"]
        cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
        if cfg != "train { seed: 3 }\n":
            return "config attribute is %r" % cfg
    return None


def main():
    root = sys.argv[1]
    failures = 0
    checked = 0
    with open(os.path.join(root, "index.txt")) as index:
        for line in index:
            name, rows = line.split()
            try:
                err = check(os.path.join(root, name), int(rows))
            except Exception as e:  # an unreadable file is the failure this test looks for
                err = "cannot read: %s" % e
            checked += 1
            if err:
                failures += 1
                print("%s: %s" % (name, err))
    print("h5py read %d killed logs, %d failures" % (checked, failures))
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
