#!/usr/bin/env bash
# End to end: the finetune binary trains on synthetic data (seconds), prints per-epoch accuracy,
# writes its log and resolved config; bad input gives clear errors and exit status 2.
set -uo pipefail
FINETUNE="$1"
OUT="${TEST_TMPDIR}/run"
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- a real run ----------------------------------------------------------------------------
"$FINETUNE" --data_set synthetic --nb_classes 4 --synthetic_train_size 96 \
  --synthetic_eval_size 40 --batch_size 16 --epochs 3 --warmup_epochs 0 --warmup_steps 0 --blr 8e-3 \
  --num_threads 2 --print_freq 2 --output_dir "$OUT" >"$TEST_TMPDIR/stdout" 2>"$TEST_TMPDIR/stderr" \
  || { cat "$TEST_TMPDIR/stderr"; fail "training exited with $?"; }
log="$TEST_TMPDIR/stderr"
grep -q "config: the built-in default (configs/finetune_default.pbtxt) with data.data_set=synthetic" "$log" \
  || fail "no config line"
grep -q "number of params: " "$log" || fail "no parameter count"
grep -q "Epoch: \[0\]  \[2/6\]" "$log" || fail "no progress line"
[[ $(grep -c "Accuracy of the model on the 40 test images" "$log") == 3 ]] || fail "not 3 eval lines"
grep -q "Max accuracy:" "$log" || fail "no max accuracy"
grep -q "Training time" "$log" || fail "no training time"
grep -q "malloc: freed memory retained for reuse" "$log" || fail "malloc settings not applied"
# --noretain_freed_memory leaves glibc's defaults, and training works the same.
"$FINETUNE" --data_set synthetic --nb_classes 4 --synthetic_train_size 32 --synthetic_eval_size 8 \
  --batch_size 16 --epochs 1 --warmup_epochs 0 --noretain_freed_memory >/dev/null 2>"$TEST_TMPDIR/noretain" \
  || fail "--noretain_freed_memory run exited with $?"
grep -q "malloc: glibc defaults kept" "$TEST_TMPDIR/noretain" || fail "--noretain_freed_memory ignored"
"$FINETUNE" --noretain_freed_memory=false --epochs 1 >/dev/null 2>"$TEST_TMPDIR/noerr" \
  && fail "--noretain_freed_memory=false was accepted"
grep -qF -- "--noretain_freed_memory takes no value; write --retain_freed_memory=true or --retain_freed_memory=false" \
  "$TEST_TMPDIR/noerr" || fail "--noflag=value: $(cat "$TEST_TMPDIR/noerr")"

# log.txt: one JSON object per epoch, in order, with the official keys.
[[ $(wc -l <"$OUT/log.txt") == 3 ]] || fail "log.txt has $(wc -l <"$OUT/log.txt") lines"
for e in 0 1 2; do
  sed -n "$((e + 1))p" "$OUT/log.txt" | grep -q "\"epoch\": $e, \"n_parameters\": 3388684}" \
    || fail "log.txt line $((e + 1)): $(sed -n "$((e + 1))p" "$OUT/log.txt")"
done
grep -q '"test_acc1"' "$OUT/log.txt" || fail "no test_acc1 in log.txt"
# The task is easy: the last epoch must beat chance (25%) clearly and the loss must fall.
python_free_check() {
  local first last acc
  first=$(sed -n 1p "$OUT/log.txt" | sed 's/.*"train_loss": \([0-9.e+-]*\).*/\1/')
  last=$(sed -n 3p "$OUT/log.txt" | sed 's/.*"train_loss": \([0-9.e+-]*\).*/\1/')
  acc=$(sed -n 3p "$OUT/log.txt" | sed 's/.*"test_acc1": \([0-9.e+-]*\).*/\1/')
  awk -v f="$first" -v l="$last" -v a="$acc" 'BEGIN { exit !(l < f && a >= 60) }' \
    || fail "did not learn: train_loss $first -> $last, test_acc1 $acc"
}
python_free_check

# config.pbtxt: the resolved config, lr included (blr 8e-3 * 16 / 256 = 5e-4).
grep -q 'data_set: "synthetic"' "$OUT/config.pbtxt" || fail "config.pbtxt lacks data_set"
grep -q 'lr: 0.0005' "$OUT/config.pbtxt" || fail "config.pbtxt lacks the resolved lr"

# ---- bad input -------------------------------------------------------------------------------
expect_error() {  # expect_error "message" args...
  local message="$1"; shift
  "$FINETUNE" "$@" >/dev/null 2>"$TEST_TMPDIR/err"
  local rc=$?
  [[ $rc == 2 ]] || fail "exit status $rc (want 2) for: $*"
  grep -qF -- "$message" "$TEST_TMPDIR/err" || fail "want '$message' for: $*; got: $(cat "$TEST_TMPDIR/err")"
}
expect_error "data.data_path: '/no/such/dir' does not exist" --data_path /no/such/dir --config default
expect_error "unknown field 'batchsize' (did you mean 'batch_size'?)" --batchsize 3
expect_error "train.batch_size: -1 must be positive" --batch_size -1
expect_error "unknown model 'convnextv2_mega'" --model convnextv2_mega
expect_error "config file /no/such.pbtxt cannot be read" --config=/no/such.pbtxt
printf 'train { batch_size: "x" }\n' >"$TEST_TMPDIR/bad.pbtxt"
expect_error "bad.pbtxt:1:21: Expected integer" --config="$TEST_TMPDIR/bad.pbtxt"

# ---- help and print_config -----------------------------------------------------------------
"$FINETUNE" --help >"$TEST_TMPDIR/help" || fail "--help exited with $?"
grep -q -- "--batch_size  (train.batch_size, int32, default 64)" "$TEST_TMPDIR/help" || fail "help"
grep -q -- "--noretain_freed_memory" "$TEST_TMPDIR/help" || fail "help lacks --noretain_freed_memory"
"$FINETUNE" --print_config --epochs 7 >"$TEST_TMPDIR/printed" || fail "--print_config failed"
grep -q "epochs: 7" "$TEST_TMPDIR/printed" || fail "print_config"
echo PASS
