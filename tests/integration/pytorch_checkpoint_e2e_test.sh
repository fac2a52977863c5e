#!/usr/bin/env bash
# Checkpoints Python opens: a short real fine-tuning run on a Fashion-MNIST subset, then Debian's
# python3-torch loads checkpoint-0.pth and checkpoint-best.pth with weights_only=True into the
# official ConvNeXt V2 architecture and must get the test accuracy and loss the run logged.
# A truncated or bit-flipped checkpoint is refused with an error naming it.
set -uo pipefail
FINETUNE="$1"
ORACLE="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=/usr/bin/python3
"$PY" -c 'import torch, numpy' || fail "python3-torch and python3-numpy are needed (tools/setup.sh)"

DATA="$TEST_TMPDIR/data"
"$PY" "$ORACLE" make-data /usr/share/datasets/fashion-mnist "$DATA" 512 200 || fail "make-data"
RUN="$TEST_TMPDIR/run"
# ConvNeXt V2-Atto on 32x32 inputs (the official defaults are Base at 224x224).
MODEL=(--model convnextv2_atto --input_size 32 --nb_classes 10 --drop_path 0 --head_init_scale 1)
"$FINETUNE" "${MODEL[@]}" --data_set IDX --data_path "$DATA" --epochs 1 --warmup_epochs 0 \
  --batch_size 64 --blr 4e-3 --num_threads 2 --output_dir "$RUN" 2>"$TEST_TMPDIR/run.log" \
  || { tail "$TEST_TMPDIR/run.log"; fail "finetune exited with $?"; }
grep -q "Accuracy of the model on the 200 test images" "$TEST_TMPDIR/run.log" || fail "no eval line"

"$PY" "$ORACLE" check "$RUN" "$DATA" 0 || fail "PyTorch does not reproduce the run's accuracy"

# Corrupt copies: refused by evaluation (--resume) and by --finetune, naming the file.
"$PY" "$ORACLE" flip "$RUN/checkpoint-0.pth" "$TEST_TMPDIR/flipped.pth" || fail flip
size=$(stat -c %s "$RUN/checkpoint-0.pth")
head -c $((size - 100)) "$RUN/checkpoint-0.pth" >"$TEST_TMPDIR/truncated.pth"
expect_refused() {  # expect_refused FILE "message" flags...
  local file="$1" message="$2"; shift 2
  "$FINETUNE" "${MODEL[@]}" --data_set IDX --data_path "$DATA" --epochs 1 --warmup_epochs 0 \
    --num_threads 2 "$@" "$file" \
    >/dev/null 2>"$TEST_TMPDIR/err"
  local rc=$?
  [[ $rc != 0 ]] || fail "$* $file was accepted"
  grep -q "$file.*$message" "$TEST_TMPDIR/err" || fail "$* $file: $(tail -3 "$TEST_TMPDIR/err")"
}
expect_refused "$TEST_TMPDIR/flipped.pth" "checksum mismatch in record data/" --eval true --resume
expect_refused "$TEST_TMPDIR/flipped.pth" "checksum mismatch in record data/" \
  --output_dir "$TEST_TMPDIR/ft" --finetune
expect_refused "$TEST_TMPDIR/truncated.pth" "truncated" --eval true --resume
echo PASS
