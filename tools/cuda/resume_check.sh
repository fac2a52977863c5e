#!/usr/bin/env bash
# run_resume_check, sourced by tools/cuda/device_check.sh (on the GPU machine) and by
# //tests/cuda:resume_check_test (on the CPU, so that its log patterns and arithmetic are
# checked in every build). Needs WORK (a scratch folder) set by the caller.
#
# Stops a run with SIGTERM at epoch 1, step 2, resumes it, and compares its final loss with two
# unstopped runs.
#
# Tolerance: GPU runs are not bitwise reproducible (atomic float adds in the GRN kernels' sums,
# cuDNN/cuBLAS algorithm choice), so two unstopped runs with the same seed already differ a
# little. The resumed run must end within 3x that run-to-run difference of the first unstopped
# run, clamped to [0.01%, 0.5%] of the loss (the floor: runs that happen to agree bitwise still
# allow for other kernel choices after the restart; the cap: the run-to-run noise of bfloat16
# arithmetic over a few dozen steps is far below it, while a resume that skipped, repeated or
# reset anything, e.g. the optimizer's moments, moves the loss by several percent here).
final_loss() {  # LOG_TXT KEY: the KEY of the last line of a log.txt
  sed -n "s/.*\"$2\": \([-0-9.eE+]*\).*/\1/p" "$1" | tail -1
}
run_resume_check() {  # NAME BINARY KEY ARGS...
  local name=$1 binary=$2 key=$3; shift 3
  local out=$WORK/$name
  local rc
  for ref in a b; do
    "$binary" "$@" --output_dir "$out/ref_$ref" >"$out.ref_$ref.log" 2>&1
    rc=$?
    ((rc == 0)) || { tail -5 "$out.ref_$ref.log"; echo "$name: unstopped run $ref exited with $rc"; return 1; }
  done
  "$binary" "$@" --output_dir "$out/stopped" >"$out.stop1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1200); do
    grep -q 'Epoch: \[1\]  \[ *2/' "$out.stop1.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  rc=$?
  [[ $rc == 75 ]] || { tail -5 "$out.stop1.log"; echo "$name: stopped run exited with $rc, want 75"; return 1; }
  grep -q "Stopping at epoch" "$out.stop1.log" || { echo "$name: no stopping line"; return 1; }
  "$binary" "$@" --output_dir "$out/stopped" >"$out.stop2.log" 2>&1
  rc=$?
  ((rc == 0)) || { tail -5 "$out.stop2.log"; echo "$name: resumed run exited with $rc"; return 1; }
  grep -q "Resume checkpoint .*-step" "$out.stop2.log" || { echo "$name: did not resume from the mid-epoch checkpoint"; return 1; }
  local a b c
  a=$(final_loss "$out/ref_a/log.txt" "$key")
  b=$(final_loss "$out/ref_b/log.txt" "$key")
  c=$(final_loss "$out/stopped/log.txt" "$key")
  [[ -n $a && -n $b && -n $c ]] || { echo "$name: no $key in a log.txt"; return 1; }
  [[ $(wc -l <"$out/stopped/log.txt") == $(wc -l <"$out/ref_a/log.txt") ]] ||
    { echo "$name: resumed log.txt has other epochs than the unstopped run"; return 1; }
  compare_losses "$name" "$key" "$a" "$b" "$c"
}
compare_losses() {  # NAME KEY A B C: unstopped A and B, stopped+resumed C; fails outside tolerance
  awk -v name="$1" -v key="$2" -v a="$3" -v b="$4" -v c="$5" 'BEGIN {
    noise = a - b; if (noise < 0) noise = -noise
    mag = (a < 0 ? -a : a)
    tol = 3 * noise; if (tol > 0.005 * mag) tol = 0.005 * mag; if (tol < 1e-4 * mag) tol = 1e-4 * mag
    d = c - a; if (d < 0) d = -d
    printf "%s: final %s unstopped %.6f / %.6f (run-to-run %.2e), stopped+resumed %.6f: |diff| %.2e, tolerance %.2e\n", name, key, a, b, noise, c, d, tol
    exit (d <= tol) ? 0 : 1 }'
}
