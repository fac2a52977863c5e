"""Runs the ONNX files onnx_peer_test wrote with the real packages and checks their outputs.

Usage: peer-python onnx_oracle.py DIR   (DIR holds the .onnx and .npy files of the C++ test)

(a) fp32 graph in onnxruntime == the toolkit's eval logits (batch 2 at 64 px, batch 3 at 96 px
    from one file: dynamic batch, height and width), also with the normalization inside, and
    for convnextv2_atto;
(b) on a model whose first GRN's sum of squares passes 65504: the fp16 graph, run in fp16 by
    onnx.reference.ReferenceEvaluator, stays within fp16 tolerance of the toolkit's fp32 logits,
    while the naive fp16 graph (no casts) gives inf/NaN; onnxruntime runs the fp16 graph too;
(c) onnx.checker.check_model(full_check=True) accepts every file.
Prints each measured difference; exits 1 on the first failed check.
"""

import os
import sys

import numpy as np
import onnx
import onnxruntime
from onnx.reference import ReferenceEvaluator

FP16_MAX = 65504.0
FP32_TOL = 1e-4
# fp16 has a 2^-11 relative rounding step; through ~40 layers of the tiny model the logits
# (order 1 to 10) keep about 2 to 3 significant digits.
FP16_RTOL = 1e-2
FP16_ATOL = 1e-2
SUMSQ = "stages.0.0.grn.sumsq"


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def path(d, name):
    return os.path.join(d, name)


def load(d, name):
    return np.load(path(d, name))


def ort_run(model_path, x):
    sess = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"pixel_values": x})[0]


def with_output(model_path, value):
    """The model with an intermediate value (typed by the export's shape inference) as output."""
    m = onnx.load(model_path)
    info = [v for v in m.graph.value_info if v.name == value]
    if len(info) != 1:
        fail(f"{model_path}: no value_info for {value}")
    m.graph.output.extend(info)
    return m


def check_checker(d):
    for name in sorted(os.listdir(d)):
        if name.endswith(".onnx"):
            onnx.checker.check_model(path(d, name), full_check=True)
            print(f"onnx.checker (full_check) accepts {name}")


def check_fp32(d):
    for model, case in [("fp32", "b2_64"), ("fp32", "b3_96"), ("atto_fp32", "atto_b2_64")]:
        x, want = load(d, f"input_{case}.npy"), load(d, f"logits_{case}.npy")
        got = ort_run(path(d, f"{model}.onnx"), x)
        if got.shape != want.shape:
            fail(f"fp32 {case}: onnxruntime shape {got.shape}, toolkit {want.shape}")
        diff = float(np.abs(got - want).max())
        print(f"fp32 onnxruntime vs toolkit, {case}: max |diff| = {diff:.3g} "
              f"(max |logit| {np.abs(want).max():.3g})")
        if not diff <= FP32_TOL:
            fail(f"fp32 {case}: {diff} > {FP32_TOL}")
    x, want = load(d, "raw_b2_64.npy"), load(d, "logits_raw_b2_64.npy")
    diff = float(np.abs(ort_run(path(d, "fp32_normalize.onnx"), x) - want).max())
    print(f"fp32 normalize_inside onnxruntime vs toolkit: max |diff| = {diff:.3g}")
    if not diff <= FP32_TOL:
        fail(f"fp32 normalize_inside: {diff} > {FP32_TOL}")


def check_fp16(d):
    x, want = load(d, "input_overflow.npy"), load(d, "logits_overflow.npy")
    x16 = x.astype(np.float16)
    safe = ReferenceEvaluator(with_output(path(d, "fp16.onnx"), SUMSQ))
    logits, sumsq = safe.run(["logits", SUMSQ], {"pixel_values": x16})
    print(f"fp16 graph: {SUMSQ} is {sumsq.dtype}, max {sumsq.max():.6g} (fp16 max {FP16_MAX})")
    if sumsq.dtype != np.float32 or not sumsq.max() > FP16_MAX:
        fail("the input does not push the first GRN's sum of squares past fp16's range")
    if logits.dtype != np.float16:
        fail(f"fp16 graph's logits are {logits.dtype}")
    err = np.abs(logits.astype(np.float32) - want)
    bound = FP16_ATOL + FP16_RTOL * np.abs(want)
    print(f"fp16 ReferenceEvaluator vs toolkit fp32: max |diff| = {err.max():.3g} "
          f"(max |logit| {np.abs(want).max():.3g}, max diff / bound {(err / bound).max():.3g})")
    if not np.all(err <= bound):
        fail("fp16 graph outside fp16 tolerance")

    naive = ReferenceEvaluator(with_output(path(d, "fp16_naive.onnx"), SUMSQ))
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow this graph is here to show
        n_logits, n_sumsq = naive.run(["logits", SUMSQ], {"pixel_values": x16})
    bad = int((~np.isfinite(n_logits)).sum())
    print(f"naive fp16 graph: {SUMSQ} {n_sumsq.dtype}, {int(np.isinf(n_sumsq).sum())} of "
          f"{n_sumsq.size} inf; {bad} of {n_logits.size} logits inf/NaN")
    if n_sumsq.dtype != np.float16 or not np.isinf(n_sumsq).any() or bad == 0:
        fail("the naive fp16 graph did not overflow")

    got = ort_run(path(d, "fp16.onnx"), x16).astype(np.float32)
    diff = float(np.abs(got - want).max())
    print(f"fp16 onnxruntime vs toolkit fp32: max |diff| = {diff:.3g}")
    if not np.all(np.abs(got - want) <= bound):
        fail("fp16 graph in onnxruntime outside fp16 tolerance")
    f32 = ort_run(path(d, "overflow_fp32.onnx"), x)
    diff = float(np.abs(f32 - want).max())
    print(f"fp32 onnxruntime vs toolkit on the overflow model: max |diff| = {diff:.3g}")
    if not diff <= FP32_TOL * max(1.0, float(np.abs(want).max())):
        fail("fp32 graph of the overflow model differs from the toolkit")


def main():
    d = sys.argv[1]
    print(f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}")
    check_checker(d)
    check_fp32(d)
    check_fp16(d)
    print("all ONNX checks passed")


if __name__ == "__main__":
    main()
