"""Checks what a finished run left in its output dir: manifest.pbtxt and metrics.h5.

usage: /usr/bin/python3 check_run_dir.py RUN_DIR TRAIN_ROWS EVAL_ROWS [key=value ...]
The key=value pairs are expected metrics.h5 root attributes (as text). Exits non-zero with a
message naming what is wrong.
"""
import hashlib
import math
import re
import sys

import h5py


def fail(msg):
    sys.exit("FAIL %s: %s" % (sys.argv[1], msg))


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


run, train_rows, eval_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
expected = dict(a.split("=", 1) for a in sys.argv[4:])

manifest = open(run + "/manifest.pbtxt").read()
for needle in ("state: FINISHED", "exit_status: 0", 'program: "finetune"',
               'name: "libtorch"', 'name: "hdf5"', 'name: "protobuf"', 'build_mode: "opt"',
               "end_time: ", "attempts: "):
    if needle not in manifest:
        fail("manifest.pbtxt lacks %r" % needle)
config_text = open(run + "/config.pbtxt").read()
sha = hashlib.sha256(config_text.encode()).hexdigest()
if 'config_sha256: "%s"' % sha not in manifest:
    fail("manifest config_sha256 is not the SHA-256 of config.pbtxt (%s)" % sha)

with h5py.File(run + "/metrics.h5", "r") as f:
    attrs = {k: text(v) for k, v in f.attrs.items()}
    if attrs.get("config") != config_text:
        fail("metrics.h5 config attribute differs from config.pbtxt")
    if attrs.get("config_sha256") != sha:
        fail("metrics.h5 config_sha256 %r" % attrs.get("config_sha256"))
    for k, v in expected.items():
        if attrs.get(k) != v:
            fail("attribute %s is %r, want %r" % (k, attrs.get(k), v))
    for k in ("git_commit", "host", "start_time", "end_time", "version_libtorch", "seed"):
        if not attrs.get(k):
            fail("attribute %s missing" % k)
    steps = list(f["train/step"][:])
    if steps != list(range(train_rows)):
        fail("train/step is %s, want 0..%d" % (steps, train_rows - 1))
    loss = f["train/loss"][:]
    if not all(math.isfinite(x) and x > 0 for x in loss):
        fail("train/loss %s" % loss)
    if not all(x > 0 for x in f["train/lr"][:]):
        fail("train/lr %s" % f["train/lr"][:])
    if len(f["eval/acc1"]) != eval_rows:
        fail("%d eval rows, want %d" % (len(f["eval/acc1"]), eval_rows))
    if not all(0 <= x <= 100 for x in f["eval/acc1"][:]):
        fail("eval/acc1 %s" % f["eval/acc1"][:])
    if list(f["eval/epoch"][:]) != list(range(eval_rows)):
        fail("eval/epoch %s" % f["eval/epoch"][:])
    # Column lengths agree (one row per step / per evaluation).
    for g in ("train", "eval"):
        lengths = {len(f[g][c]) for c in f[g]}
        if len(lengths) != 1:
            fail("/%s columns have different lengths %s" % (g, lengths))
print("ok", run)
