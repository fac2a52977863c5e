#!/usr/bin/env bash
# End to end: the pretrain binary pre-trains FCMAE on synthetic data for a few steps, writes its
# log rows, reconstruction PNGs and weights; impossible sizes fail at start with clear errors.
set -uo pipefail
PRETRAIN="$1"
OUT="${TEST_TMPDIR}/run"
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- a real run: 64 px (2x2 mask grid), 3 epochs of 4 steps ---------------------------------
"$PRETRAIN" --data_set synthetic --synthetic_train_size 16 --input_size 64 --batch_size 4 \
  --epochs 3 --warmup_epochs 0 --blr 2e-2 --decoder_embed_dim 32 --vis_images 2 \
  --num_threads 2 --print_freq 2 --output_dir "$OUT" >"$TEST_TMPDIR/stdout" 2>"$TEST_TMPDIR/stderr" \
  || { cat "$TEST_TMPDIR/stderr"; fail "pre-training exited with $?"; }
log="$TEST_TMPDIR/stderr"
grep -q "config: the built-in default (configs/pretrain_default.pbtxt) with" "$log" || fail "no config line"
grep -q "4 patches, 1 visible, GRN over sample" "$log" || fail "no model line"
grep -q "base lr: 2.00e-02, actual lr: 3.13e-04" "$log" || fail "lr is not blr * 4 / 256"
grep -q "Epoch: \[0\]  \[2/4\]" "$log" || fail "no progress line"
grep -q "Training time" "$log" || fail "no training time"

# log.txt: one JSON object per epoch with the official keys, in order.
[[ $(wc -l <"$OUT/log.txt") == 3 ]] || fail "log.txt has $(wc -l <"$OUT/log.txt") lines"
for e in 0 1 2; do
  sed -n "$((e + 1))p" "$OUT/log.txt" | grep -q "^{\"train_lr\": .*, \"train_loss\": .*, \"epoch\": $e, \"n_parameters\": " \
    || fail "log.txt line $((e + 1)): $(sed -n "$((e + 1))p" "$OUT/log.txt")"
done
for e in 0000 0001 0002; do
  [[ -s "$OUT/reconstruction-$e.png" ]] || fail "no reconstruction-$e.png"
  head -c 8 "$OUT/reconstruction-$e.png" | od -An -c | grep -q "P   N   G" || fail "reconstruction-$e.png is not a PNG"
done
[[ -s "$OUT/fcmae_weights.pt" ]] || fail "no fcmae_weights.pt"
ls "$OUT" >"$TEST_TMPDIR/ls"
grep -q "tmp" "$TEST_TMPDIR/ls" && fail "temporary files left: $(cat "$TEST_TMPDIR/ls")"
grep -q 'lr: 0.0003125' "$OUT/config.pbtxt" || fail "config.pbtxt lacks the resolved lr"

# ---- sizes that cannot work ------------------------------------------------------------------
expect_error() {  # expect_error "message" args...
  local message="$1"; shift
  "$PRETRAIN" --data_set synthetic "$@" >/dev/null 2>"$TEST_TMPDIR/err"
  local rc=$?
  [[ $rc == 2 ]] || fail "exit status $rc (want 2) for: $*"
  grep -qF -- "$message" "$TEST_TMPDIR/err" || fail "want '$message' for: $*; got: $(cat "$TEST_TMPDIR/err")"
}
expect_error "model.input_size: 100 is not divisible by fcmae.patch_size 32" --input_size 100
expect_error "fcmae.mask_ratio: 0.8 keeps int(4 * (1 - mask_ratio)) = 0 of the 4 patches" --input_size 64 --mask_ratio 0.8
expect_error "fcmae.patch_size: 16 must be 32" --patch_size 16
expect_error "fcmae.grn_scope: 'all' is not one of: sample, batch" --set fcmae.grn_scope=all
# A training set smaller than one optimizer step: exit 1 with the reason.
"$PRETRAIN" --data_set synthetic --synthetic_train_size 8 --input_size 64 --batch_size 4 \
  --update_freq 4 --decoder_embed_dim 32 --epochs 1 --warmup_epochs 0 >/dev/null 2>"$TEST_TMPDIR/err"
[[ $? == 1 ]] || fail "a too small training set did not fail"
grep -qF "train.batch_size 4 x train.update_freq 4 needs more images than the training set has (8)" \
  "$TEST_TMPDIR/err" || fail "unclear error: $(cat "$TEST_TMPDIR/err")"
"$PRETRAIN" --help >"$TEST_TMPDIR/help" || fail "--help failed"
grep -q "grn_scope" "$TEST_TMPDIR/help" || fail "--help lacks grn_scope"
echo PASS
