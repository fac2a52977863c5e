#!/usr/bin/env bash
# The finetune binary records its run: manifest.pbtxt (complete at the end) and metrics.h5 (one
# train row per step, one eval row per epoch, root attributes); a second run into the same
# output dir counts as attempt 2.
set -uo pipefail
FINETUNE="$1"
CHECK="$2"
OUT="$TEST_TMPDIR/run"
fail() { echo "FAIL: $*" >&2; exit 1; }
run() {
  "$FINETUNE" --data_set synthetic --nb_classes 4 --synthetic_train_size 32 --synthetic_eval_size 8 \
    --model convnextv2_atto --batch_size 16 --epochs 2 --warmup_epochs 0 --seed 5 --num_threads 2 \
    --output_dir "$OUT" >"$TEST_TMPDIR/stdout" 2>"$TEST_TMPDIR/stderr" \
    || { cat "$TEST_TMPDIR/stderr"; fail "training exited with $?"; }
}
run
/usr/bin/python3 "$CHECK" "$OUT" 4 2 seed=5 attempts=1 program=finetune || fail "first run"
grep -q "recording to $OUT/manifest.pbtxt" "$TEST_TMPDIR/stderr" || fail "no 'recording to' line"
run
/usr/bin/python3 "$CHECK" "$OUT" 4 2 attempts=2 || fail "second run"
grep -q "attempts: 2" "$OUT/manifest.pbtxt" || fail "manifest does not count the attempt"
echo PASS
