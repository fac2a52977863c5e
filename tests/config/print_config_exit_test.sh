#!/usr/bin/env bash
# A sample of bad command lines through the real binaries: each exits 2 with a message naming
# the field or flag (the in-process config_fuzz_test tries hundreds through the same code).
set -uo pipefail
FINETUNE="$1"
PRETRAIN="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
tried=0
check() {  # check BINARY WORD ARGS...: exit status 2 and WORD in stderr
  local bin="$1" word="$2"
  shift 2
  "$bin" --print_config "$@" >"$TEST_TMPDIR/out" 2>"$TEST_TMPDIR/err"
  local rc=$?
  [[ $rc == 2 ]] || fail "$(basename "$bin") $*: exit $rc, want 2: $(cat "$TEST_TMPDIR/err")"
  grep -q -- "$word" "$TEST_TMPDIR/err" \
    || fail "$(basename "$bin") $*: the message does not name $word: $(cat "$TEST_TMPDIR/err")"
  [[ ! -s "$TEST_TMPDIR/out" ]] || fail "$(basename "$bin") $*: printed a config anyway"
  tried=$((tried + 1))
}
for bin in "$FINETUNE" "$PRETRAIN"; do
  check "$bin" batch_size --batch_size abc
  check "$bin" batch_size --set train.batch_size=-4
  check "$bin" epochs --epochs 99999999999999999999
  check "$bin" lr --set optim.lr=nan
  check "$bin" input_size --input_size ""
  check "$bin" bogus_field --set optim.bogus_field=1
  check "$bin" bogus_flag --bogus_flag 1
  check "$bin" model_ema --model_ema maybe
  check "$bin" corrupt_images --set data.corrupt_images=sometimes
  check "$bin" nonexistent.pbtxt --config=/nonexistent.pbtxt
done
"$FINETUNE" --print_config --batch_size 32 >"$TEST_TMPDIR/out" 2>"$TEST_TMPDIR/err" \
  || fail "a good command line failed: $(cat "$TEST_TMPDIR/err")"
grep -q "batch_size: 32" "$TEST_TMPDIR/out" || fail "--print_config: $(cat "$TEST_TMPDIR/out")"
echo "PASS: $tried bad command lines exited 2 naming the field"
