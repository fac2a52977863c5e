#!/usr/bin/env python3
"""This toolkit against a current PyTorch (the peer) on the CPU, side by side in one run.

Runs the official ConvNeXt V2 architecture in the peer venv (tools/bench/peer_setup.sh makes it;
official_cuda_bench.py times it) and this toolkit's benchmarks (//tools/bench:train_step_bench,
//tools/bench:infer_bench), every side in a process of its own, in alternating rounds (each
round in the opposite order of the one before, so a load that comes and goes hits both), all
with the same threads (OMP_NUM_THREADS and the benchmarks' own flags) and the same malloc
setting (--malloc retain: GLIBC_TUNABLES keeps freed memory in every process, as the toolkit's
binaries do by default). Prints every run, then per case the medians, the peak resident memory
of each side (the process's, so the peer's includes Python, torch and the compiler) and the
toolkit's speed-up over the strongest peer mode of the same precision and over the strongest of
any precision.

    bazel build -c opt //tools/bench:train_step_bench //tools/bench:infer_bench
    tools/bench/peer_setup.sh
    python3 tools/bench/peer_compare.py --rounds 3

Cases are "<train|infer>-<variant>-b<batch>-<size>" (convnextv2_<variant>): a training step
(forward, cross-entropy, backward, AdamW; peer: eager, eager channels_last and torch.compile,
each float32 and under bf16 autocast; toolkit: float32 and bf16 AMP) or a forward pass in eval
mode without autograd (peer: eager channels_last, torch.compile, onnxruntime on the torch.onnx
export in float32, each checked to agree with eager float32; toolkit: float32 and bf16).
--threads 1,2 repeats every case per thread count (the cost table in docs/benchmarks.md).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CASES = ("train-atto-b128-32,train-atto-b32-224,train-tiny-b16-224,"
                 "infer-atto-b64-224,infer-tiny-b64-224")
PEER_PYTHON = "/opt/convnextv2-peer/bin/peer-python"
# glibc keeps freed memory (no mmap, no trimming): what convnextv2::util::RetainFreedMemory does.
RETAIN_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295"


class Case:
    def __init__(self, spec):
        m = re.fullmatch(r"(train|infer)-([a-z]+)-b(\d+)-(\d+)", spec)
        if not m:
            raise ValueError("case '%s' is not <train|infer>-<variant>-b<batch>-<size>, e.g. "
                             "train-atto-b128-32" % spec)
        self.spec, self.task = spec, m.group(1)
        self.model = "convnextv2_" + m.group(2)
        self.batch, self.size = int(m.group(3)), int(m.group(4))


class Side:
    """One benchmark process: who runs it, what it is called in the table, how to read it."""

    def __init__(self, who, mode, precision, argv, pattern):
        self.who, self.mode, self.precision = who, mode, precision
        self.argv, self.pattern = argv, pattern
        self.ms, self.rss_mib, self.failed = [], [], None

    @property
    def label(self):
        return "%s %s %s" % (self.who, self.mode, self.precision)


def steps_for(case, a):
    if a.steps:
        return a.steps, a.warmup or 1
    if case.task == "infer":
        return 5, 2
    return (10, 3) if case.size <= 64 else (4, 2)


def toolkit_sides(case, threads, a):
    steps, warmup = steps_for(case, a)
    common = ["--model=" + case.model, "--batch=%d" % case.batch, "--size=%d" % case.size,
              "--steps=%d" % steps, "--warmup=%d" % warmup, "--threads=%d" % threads,
              "--malloc=" + a.malloc]
    sides = []
    for precision in a.precision_list:
        if case.task == "train":
            argv = [os.path.join(a.bin_dir, "train_step_bench"), "--classes=10", "--grn=fused",
                    "--amp=%s" % ("true" if precision == "bfloat16" else "false")] + common
            pattern = r"grn=fused: ([0-9.]+) ms/step"
        else:
            argv = [os.path.join(a.bin_dir, "infer_bench"), "--classes=1000",
                    "--precision=" + precision] + common
            pattern = r"([0-9.]+) ms/batch"
        sides.append(Side("toolkit", "float32" if precision == "float32" else "amp",
                          precision, argv, pattern))
    return sides


def peer_modes(case, a):
    """(label, --mode, --layout, precisions) of the peer for this case."""
    both = ("float32", "bfloat16")
    if case.task == "train":
        modes = [("eager", "eager", "contiguous", both),
                 ("channels_last", "eager", "channels_last", both),
                 ("compile", "compile", "channels_last", both)]
    else:
        modes = [("channels_last", "eager", "channels_last", both),
                 ("compile", "compile", "channels_last", both),
                 ("onnxruntime", "onnxruntime", "contiguous", ("float32",))]
    if a.max_autotune:
        modes.append(("compile-max-autotune", "compile", "channels_last", both))
    if a.peer_modes:
        wanted = a.peer_modes.split(",")
        modes = [m for m in modes if m[0] in wanted]
    return modes


def peer_sides(case, threads, a):
    steps, warmup = steps_for(case, a)
    sides = []
    for label, mode, layout, precisions in peer_modes(case, a):
        for precision in (p for p in precisions if p in a.precision_list):
            argv = [a.peer_python, os.path.join(HERE, "official_cuda_bench.py"), "--device=cpu",
                    "--task=" + case.task, "--model=" + case.model,
                    "--batch=%d" % case.batch, "--size=%d" % case.size,
                    "--classes=%d" % (10 if case.task == "train" else 1000),
                    "--steps=%d" % steps, "--warmup=%d" % warmup, "--threads=%d" % threads,
                    "--mode=" + mode, "--layout=" + layout, "--precision=" + precision,
                    "--drop_path=0", "--label_smoothing=0"]
            if label == "compile-max-autotune":
                argv.append("--compile_mode=max-autotune")
            sides.append(Side("peer", label, precision, argv, r"([0-9.]+) ms/(?:step|batch)"))
    return sides


def run_once(side, env, timeout):
    """Runs one benchmark process; returns (ms, peak RSS MiB, output) or raises RuntimeError."""
    proc = subprocess.Popen(side.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError("timed out after %d s: %s" % (timeout, " ".join(side.argv)))
    m = re.search(side.pattern, out)
    if proc.returncode != 0 or not m:
        raise RuntimeError("exit %d, no figure, from %s:\n%s" %
                           (proc.returncode, " ".join(side.argv), out[-3000:]))
    rss = re.search(r"peak_rss_kib=(\d+)", out)
    return float(m.group(1)), (int(rss.group(1)) / 1024.0 if rss else float("nan")), out


def measure(side, env, timeout):
    """run_once with the process's own peak RSS. RUSAGE_CHILDREN would give the maximum over all
    the children so far, so each runs under this script's --_rss_of, which waits for it alone
    (wait4) and prints its peak (largest of it and its descendants, e.g. compile workers)."""
    wrapped = Side(side.who, side.mode, side.precision,
                   [sys.executable, os.path.join(HERE, "peer_compare.py"), "--_rss_of", "--"]
                   + side.argv, side.pattern)
    return run_once(wrapped, env, timeout)


def rss_of(argv):
    """Runs argv, passes its output through, appends its peak RSS (wait4), exits with its code."""
    proc = subprocess.Popen(argv)
    _, status, usage = os.wait4(proc.pid, 0)
    print("peak_rss_kib=%d" % usage.ru_maxrss, flush=True)
    sys.exit(os.waitstatus_to_exitcode(status))


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def summarize(case, threads, sides):
    print("\n%s, %d thread(s):" % (case.spec, threads))
    print("| side | mode | precision | median ms | img/s | peak RSS MiB | runs (ms) |")
    print("|---|---|---|---|---|---|---|")
    for s in sides:
        ms = median(s.ms)
        print("| %s | %s | %s | %.1f | %.1f | %.0f | %s |" %
              (s.who, s.mode, s.precision, ms, 1000.0 * case.batch / ms if s.ms else 0,
               median(s.rss_mib), " ".join("%.0f" % x for x in s.ms) or s.failed or "-"))
    peers = [s for s in sides if s.who == "peer" and s.ms]
    for t in (s for s in sides if s.who == "toolkit" and s.ms):
        same = [p for p in peers if p.precision == t.precision]
        for what, pool in (("same precision", same), ("any precision", peers)):
            if not pool:
                continue
            best = min(pool, key=lambda p: median(p.ms))
            print("toolkit %s: %.2fx the strongest peer mode of %s (%s %s, %.1f ms); peak RSS "
                  "%.0f vs %.0f MiB" % (t.mode, median(best.ms) / median(t.ms), what, best.mode,
                                        best.precision, median(best.ms), median(t.rss_mib),
                                        median(best.rss_mib)))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=DEFAULT_CASES,
                   help="comma-separated <train|infer>-<variant>-b<batch>-<size>")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    p.add_argument("--threads", default="2", help="comma-separated thread counts")
    p.add_argument("--malloc", default="retain", choices=["retain", "default"])
    p.add_argument("--sides", default="toolkit,peer", help="toolkit, peer or both")
    p.add_argument("--peer_modes", default="",
                   help="only these peer modes (eager, channels_last, compile, onnxruntime, "
                        "compile-max-autotune); default all")
    p.add_argument("--precisions", default="float32,bfloat16",
                   help="float32 and/or bfloat16 (bf16 autocast / AMP)")
    p.add_argument("--max_autotune", action="store_true",
                   help="also torch.compile(mode='max-autotune') (minutes per compile)")
    p.add_argument("--steps", type=int, default=0, help="timed steps (0: per case)")
    p.add_argument("--warmup", type=int, default=0, help="untimed steps with --steps")
    p.add_argument("--bin_dir", default="bazel-bin/tools/bench",
                   help="where train_step_bench and infer_bench are")
    p.add_argument("--peer_python", default=PEER_PYTHON)
    p.add_argument("--timeout", type=int, default=1800, help="seconds per process")
    p.add_argument("--tmp", default="", help="work dir (inductor cache); default a new temp dir")
    a = p.parse_args()
    if a.rounds < 1:
        p.error("--rounds must be >= 1")
    try:
        a.case_list = [Case(c) for c in a.cases.split(",") if c]
        a.thread_list = [int(t) for t in a.threads.split(",") if t]
    except ValueError as e:
        p.error(str(e))
    a.precision_list = a.precisions.split(",")
    if not set(a.precision_list) <= {"float32", "bfloat16"} or not a.precision_list:
        p.error("--precisions takes float32 and/or bfloat16, got '%s'" % a.precisions)
    a.side_list = a.sides.split(",")
    if not set(a.side_list) <= {"toolkit", "peer"} or not a.side_list:
        p.error("--sides takes toolkit and/or peer, got '%s'" % a.sides)
    if "peer" in a.side_list and not os.access(a.peer_python, os.X_OK):
        p.error("no peer Python at %s: run tools/bench/peer_setup.sh (or --sides toolkit)"
                % a.peer_python)
    return a


def environment(a, tmp, threads):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(tmp, "inductor")
    env["TMPDIR"] = tmp
    env.pop("GLIBC_TUNABLES", None)
    if a.malloc == "retain":
        env["GLIBC_TUNABLES"] = RETAIN_TUNABLES
    return env


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--_rss_of":
        rss_of(sys.argv[3:])
    a = parse_args()
    tmp = a.tmp or tempfile.mkdtemp(prefix="peer_compare_")
    os.makedirs(tmp, exist_ok=True)
    print("peer_compare: %s; threads %s; malloc %s; %d round(s); work dir %s" %
          (a.cases, a.threads, a.malloc, a.rounds, tmp), flush=True)
    runs = []  # (case, threads, sides)
    for case in a.case_list:
        for threads in a.thread_list:
            sides = []
            if "toolkit" in a.side_list:
                sides += toolkit_sides(case, threads, a)
            if "peer" in a.side_list:
                sides += peer_sides(case, threads, a)
            runs.append((case, threads, sides))
    failures = 0
    try:
        for r in range(a.rounds):
            for case, threads, sides in runs:
                env = environment(a, tmp, threads)
                for side in (sides if r % 2 == 0 else sides[::-1]):
                    if side.failed:
                        continue
                    try:
                        ms, rss, out = measure(side, env, a.timeout)
                    except RuntimeError as e:
                        side.failed = "failed"
                        failures += 1
                        print("round %d %s t%d %s: FAILED %s" % (r + 1, case.spec, threads,
                                                                 side.label, e), flush=True)
                        continue
                    side.ms.append(ms)
                    side.rss_mib.append(rss)
                    agree = re.search(r"agreement .*", out)
                    print("round %d %s t%d %s: %.1f ms, peak RSS %.0f MiB%s" %
                          (r + 1, case.spec, threads, side.label, ms, rss,
                           "; " + agree.group(0) if agree else ""), flush=True)
        for case, threads, sides in runs:
            summarize(case, threads, sides)
    finally:
        if not a.tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("\n%d benchmark run(s) failed" % failures)
        sys.exit(1)


if __name__ == "__main__":
    main()
