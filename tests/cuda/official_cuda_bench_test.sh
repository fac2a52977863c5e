#!/usr/bin/env bash
# tools/bench/official_cuda_bench.py, which device_check.sh runs on the GPU machine beside this
# toolkit's benchmark, run here on the CPU (--device cpu, float32): it must build the official
# model, time its training steps and print the line device_check.sh shows; --mode compile on a
# PyTorch without torch.compile, and bad sizes, must stop with a message.
set -uo pipefail
SCRIPT=$1
PY=/usr/bin/python3
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

for model in convnextv2_atto convnextv2_tiny; do
  out=$("$PY" "$SCRIPT" --device cpu --model "$model" --batch 2 --size 32 --steps 2 --warmup 1 \
    --mode eager 2>&1)
  rc=$?
  echo "$out"
  ((rc == 0)) || fail "$model: exit $rc"
  grep -Eq "^official $model b2 eager [0-9]+ img/s [0-9.]+ ms/step \(torch .*float32, channels-last, 32x32, cpu\)$" \
    <<<"$out" || fail "$model: unexpected output: $out"
done

out=$("$PY" "$SCRIPT" --device cpu --batch 0 2>&1) && fail "--batch 0 was accepted"
grep -q "must be positive" <<<"$out" || fail "--batch 0: $out"
if ! "$PY" -c 'import sys, torch; sys.exit(0 if hasattr(torch, "compile") else 1)'; then
  out=$("$PY" "$SCRIPT" --device cpu --mode both --batch 2 --size 32 2>&1) &&
    fail "--mode both without torch.compile was accepted"
  grep -q "has no torch.compile; use --mode eager" <<<"$out" || fail "--mode both: $out"
fi

if ((fails)); then echo "$fails failure(s)"; exit 1; fi
echo "PASS"
