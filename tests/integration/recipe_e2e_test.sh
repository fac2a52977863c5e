#!/usr/bin/env bash
# End to end: the fine-tuning recipe flags of the official command lines (layer decay, update_freq,
# clip_grad, weight-decay schedule, EMA with its own evaluation, AMP) on synthetic data.
set -uo pipefail
FINETUNE="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
COMMON=(--data_set synthetic --nb_classes 4 --num_threads 2 --warmup_epochs 0 --blr 8e-3)

# ---- the recipe without AMP ------------------------------------------------------------------
OUT="$TEST_TMPDIR/recipe"
"$FINETUNE" "${COMMON[@]}" --synthetic_train_size 32 --synthetic_eval_size 16 --batch_size 8 \
  --update_freq 2 --epochs 2 --warmup_steps 2 --layer_decay 0.8 --layer_decay_type group \
  --weight_decay 0.05 --weight_decay_end 0.2 --clip_grad 1.0 --model_ema True \
  --model_ema_decay 0.5 --model_ema_eval True --print_freq 2 --output_dir "$OUT" \
  >"$TEST_TMPDIR/stdout" 2>"$TEST_TMPDIR/stderr" || { cat "$TEST_TMPDIR/stderr"; fail "exit $?"; }
log="$TEST_TMPDIR/stderr"
for want in "actual lr: 5.00e-04" "accumulate grad iterations: 2" "effective batch size: 16" \
  "Assigned values = [" "Param groups = {" '"layer_13_no_decay": {' '"stages.2.5.grn.gamma"' \
  "assumes 27 blocks in stage 3" "Using EMA with decay = 0.50000000" "Max EMA accuracy:" \
  "grad_norm: "; do
  grep -qF -- "$want" "$log" || fail "no '$want' in the log"
done
[[ $(grep -c "Accuracy of the model EMA on 16 test images" "$log") == 2 ]] || fail "EMA evals"
[[ $(wc -l <"$OUT/log.txt") == 2 ]] || fail "log.txt lines"
last=$(sed -n 2p "$OUT/log.txt")
for key in test_acc1_ema train_min_lr train_weight_decay train_grad_norm; do
  grep -q "\"$key\"" <<<"$last" || fail "no $key in $last"
done
# 4 optimizer steps in all, 2 per epoch; log.txt has the epoch's means over its micro-batches (as
# the official MetricLogger). Epoch 1's weight decay: the cosine from 0.05 to 0.2 at 2/4 (0.125)
# and at 3/4 (0.2 - 0.075 * (1 + cos(3 pi / 4)) = 0.17803), two micro-batches each: 0.15152.
# Layer decay makes the smallest group lr (the stem, group id 0) 0.8^13 = 0.05498 of the largest
# at every step, so in the means too.
awk -v wd="$(sed 's/.*"train_weight_decay": \([0-9.e+-]*\).*/\1/' <<<"$last")" \
  -v lo="$(sed 's/.*"train_min_lr": \([0-9.e+-]*\).*/\1/' <<<"$last")" \
  -v hi="$(sed 's/.*"train_lr": \([0-9.e+-]*\).*/\1/' <<<"$last")" \
  'BEGIN { r = lo / hi; exit !(wd > 0.15151 && wd < 0.15152 && r > 0.05497 && r < 0.05498) }' \
  || fail "weight decay / lr range in $last"

# ---- AMP: autocast bf16 on the CPU and the loss scaler -----------------------------------------
"$FINETUNE" "${COMMON[@]}" --synthetic_train_size 16 --batch_size 8 --update_freq 2 --epochs 1 \
  --use_amp True --disable_eval True --print_freq 1 >/dev/null 2>"$TEST_TMPDIR/amp" \
  || { cat "$TEST_TMPDIR/amp"; fail "AMP run exit $?"; }
grep -q "mixed precision: autocast to BFloat16, dynamic loss scale 65536" "$TEST_TMPDIR/amp" \
  || fail "no AMP line"
grep -q "Training time" "$TEST_TMPDIR/amp" || fail "AMP run did not finish"

# ---- the official ConvNeXt V2-Atto fine-tuning command (TRAINING.md, single machine) ----------
# Verbatim, then overrides for a tiny run: synthetic data, 32x32, one epoch, no checkpoint, and
# the augmentations this build does not have yet (RandAugment, random erasing) off.
OFFICIAL=(--model convnextv2_atto --batch_size 32 --update_freq 4 --blr 2e-4 --epochs 600
  --warmup_epochs 0 --layer_decay_type 'single' --layer_decay 0.9 --weight_decay 0.3
  --drop_path 0.1 --reprob 0.25 --mixup 0. --cutmix 0. --smoothing 0.2
  --model_ema True --model_ema_eval True --use_amp True --finetune /path/to/checkpoint
  --data_path /path/to/imagenet-1k --output_dir /path/to/save_results)
"$FINETUNE" "${OFFICIAL[@]}" --data_set synthetic --synthetic_train_size 16 \
  --synthetic_eval_size 8 --nb_classes 4 --input_size 32 --epochs 1 --batch_size 4 \
  --finetune "" --aa none --reprob 0 --num_threads 2 --output_dir "$TEST_TMPDIR/official" \
  >/dev/null 2>"$TEST_TMPDIR/official.log" || { cat "$TEST_TMPDIR/official.log"; fail "official"; }
for want in "accumulate grad iterations: 4" "effective batch size: 16" "actual lr: 1.25e-05" \
  '"layer_13_decay": {' "Using EMA with decay = 0.99990000" "autocast to BFloat16" \
  "Accuracy of the model EMA on 8 test images"; do
  grep -qF -- "$want" "$TEST_TMPDIR/official.log" || fail "official run: no '$want'"
done

# ---- errors ------------------------------------------------------------------------------------
"$FINETUNE" "${COMMON[@]}" --synthetic_train_size 16 --batch_size 8 --update_freq 4 --epochs 1 \
  >/dev/null 2>"$TEST_TMPDIR/err"
[[ $? == 1 ]] || fail "update_freq > batches should fail"
grep -q "train.update_freq 4 is more than the 2 batches of an epoch" "$TEST_TMPDIR/err" \
  || fail "update_freq message: $(cat "$TEST_TMPDIR/err")"
"$FINETUNE" "${COMMON[@]}" --model_ema_eval True >/dev/null 2>"$TEST_TMPDIR/err"
[[ $? == 2 ]] || fail "model_ema_eval without model_ema should be a config error"
grep -q "ema.model_ema_eval: true needs ema.model_ema" "$TEST_TMPDIR/err" || fail "ema message"
echo PASS
