#!/usr/bin/env bash
# tools/bench/peer_compare.py end to end on the smallest training case (train-atto-b128-32, one
# round, 2 steps) and a tiny inference case, with this toolkit's benchmarks and, where the peer
# venv exists (tools/bench/peer_setup.sh), PyTorch 2.x eager / channels_last / torch.compile in
# float32 and bf16 and onnxruntime: every side must report a figure and a peak RSS, the table
# must give the toolkit's ratio to the strongest peer mode, and the inference outputs must agree.
# Without the venv only the toolkit side runs, and the test says that it skipped the peer.
set -uo pipefail
TRAIN_BENCH=$1 SCRIPT=$2
PEER_PYTHON=${PEER_PYTHON:-/opt/convnextv2-peer/bin/peer-python}
BIN_DIR=$(dirname "$TRAIN_BENCH")
WORK=${TEST_TMPDIR:-$(mktemp -d)}/peer_compare
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

if [[ -x "$PEER_PYTHON" ]]; then
  sides=toolkit,peer
else
  sides=toolkit
  echo "SKIPPED the peer side: no peer venv at $PEER_PYTHON (tools/bench/peer_setup.sh makes" \
    "it); only this toolkit's side runs"
fi
run() {
  python3 "$SCRIPT" --bin_dir "$BIN_DIR" --peer_python "$PEER_PYTHON" --sides "$sides" \
    --rounds 1 --threads 2 --steps 2 --warmup 1 --tmp "$WORK" "$@" 2>&1
}

out=$(run --cases train-atto-b128-32)
rc=$?
echo "$out"
((rc == 0)) || fail "train case: exit $rc"
for label in "toolkit float32 float32" "toolkit amp bfloat16"; do
  grep -Eq "^round 1 train-atto-b128-32 t2 $label: [0-9.]+ ms, peak RSS [0-9]+ MiB" <<<"$out" ||
    fail "no run line for $label"
done
grep -Eq '^\| toolkit \| float32 \| float32 \| [0-9.]+ \| [0-9.]+ \| [0-9]+ \|' <<<"$out" ||
  fail "no table row for the toolkit's float32 step"
if [[ $sides == toolkit,peer ]]; then
  for mode in eager channels_last compile; do
    for precision in float32 bfloat16; do
      grep -Eq "^round 1 train-atto-b128-32 t2 peer $mode $precision: [0-9.]+ ms, peak RSS [0-9]+ MiB" \
        <<<"$out" || fail "no run line for peer $mode $precision"
    done
  done
  grep -Eq "^toolkit float32: [0-9.]+x the strongest peer mode of same precision \((eager|channels_last|compile) float32" \
    <<<"$out" || fail "no float32 ratio line"
  grep -Eq "^toolkit amp: [0-9.]+x the strongest peer mode of same precision \((eager|channels_last|compile) bfloat16" \
    <<<"$out" || fail "no bf16 ratio line"
fi

out=$(run --cases infer-atto-b2-64 --peer_modes channels_last,onnxruntime)
rc=$?
echo "$out"
((rc == 0)) || fail "inference case: exit $rc"
grep -Eq "^round 1 infer-atto-b2-64 t2 toolkit float32 float32: [0-9.]+ ms" <<<"$out" ||
  fail "no toolkit inference line"
if [[ $sides == toolkit,peer ]]; then
  grep -Eq "^round 1 infer-atto-b2-64 t2 peer onnxruntime float32: .*agreement onnxruntime: max \|logit - eager float32\| [0-9.e+-]+ \(tolerance" \
    <<<"$out" || fail "no onnxruntime line with its agreement"
  grep -Eq "^round 1 infer-atto-b2-64 t2 peer channels_last bfloat16: .*agreement eager" \
    <<<"$out" || fail "no bf16 eager line with its agreement"
fi

out=$(python3 "$SCRIPT" --cases train-atto-128 2>&1) && fail "a bad case name was accepted"
grep -q "is not <train|infer>-<variant>-b<batch>-<size>" <<<"$out" || fail "bad case: $out"
out=$(python3 "$SCRIPT" --sides peer --peer_python /nonexistent/python 2>&1) &&
  fail "a missing peer python was accepted"
grep -q "run tools/bench/peer_setup.sh" <<<"$out" || fail "missing peer: $out"

if ((fails)); then echo "$fails failure(s)"; exit 1; fi
echo "PASS"
