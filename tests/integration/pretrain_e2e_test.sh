#!/usr/bin/env bash
# End to end: the pretrain binary pre-trains FCMAE on synthetic data for a few steps, writes its
# log rows, reconstruction PNGs, weights and checkpoints; the finetune binary initializes from
# both (the handover); SIGTERM saves and exits 75, a relaunch resumes; impossible sizes fail at
# start with clear errors.
set -uo pipefail
PRETRAIN="$1"
FINETUNE="$2"
OUT="${TEST_TMPDIR}/run"
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- a real run: 64 px (2x2 mask grid), 3 epochs of 4 steps ---------------------------------
"$PRETRAIN" --data_set synthetic --synthetic_train_size 16 --input_size 64 --batch_size 4 \
  --epochs 3 --warmup_epochs 0 --blr 2e-2 --decoder_embed_dim 32 --vis_images 2 --vis_freq 5 \
  --num_threads 2 --print_freq 2 --save_ckpt_num 1 --output_dir "$OUT" >"$TEST_TMPDIR/stdout" 2>"$TEST_TMPDIR/stderr" \
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
for f in reconstruction-0001-step000005.png reconstruction-0002-step000010.png; do
  [[ -s "$OUT/$f" ]] || fail "vis_freq 5: no $f"
done
[[ -s "$OUT/fcmae_weights.pt" ]] || fail "no fcmae_weights.pt"
ls "$OUT" >"$TEST_TMPDIR/ls"
grep -q "tmp" "$TEST_TMPDIR/ls" && fail "temporary files left: $(cat "$TEST_TMPDIR/ls")"
grep -q 'lr: 0.0003125' "$OUT/config.pbtxt" || fail "config.pbtxt lacks the resolved lr"
# Checkpoints by the official policy: every epoch (save_ckpt_freq 1), the newest one kept.
[[ "$(cd "$OUT" && ls checkpoint-*.pth | tr '\n' ' ')" == "checkpoint-2.pth " ]] \
  || fail "checkpoints (save_ckpt_num 1): $(ls "$OUT")"
# The run record: manifest.pbtxt completed, metrics.h5 with one train row per step, in order.
grep -q 'program: "pretrain"' "$OUT/manifest.pbtxt" || fail "manifest: $(cat "$OUT/manifest.pbtxt")"
grep -q 'state: FINISHED' "$OUT/manifest.pbtxt" || fail "manifest not FINISHED"
train_steps() {  # the /train/step column of a metrics.h5, space-separated
  /usr/bin/python3 -c 'import h5py, sys; print(" ".join(str(int(s)) for s in h5py.File(sys.argv[1], "r")["train/step"][:]))' "$1"
}
steps=$(train_steps "$OUT/metrics.h5") || fail "metrics.h5 unreadable"
[[ -n "$steps" && "$steps" == "$(seq -s ' ' 0 $(( $(wc -w <<<"$steps") - 1 )))" ]] \
  || fail "metrics.h5 train steps: $steps"

# ---- on demand: --visualize draws a checkpoint's picture without training ------------------
# Its base config is the one stored in the checkpoint, so no other flag is needed; the picture
# of the end-of-epoch checkpoint is the one the run drew after that epoch.
"$PRETRAIN" --visualize "$OUT/checkpoint-2.pth" >"$TEST_TMPDIR/vis.out" 2>"$TEST_TMPDIR/vis.log" \
  || { cat "$TEST_TMPDIR/vis.log"; fail "--visualize exited with $?"; }
[[ "$(cat "$TEST_TMPDIR/vis.out")" == "$OUT/checkpoint-2-reconstruction.png" ]] \
  || fail "--visualize printed '$(cat "$TEST_TMPDIR/vis.out")'"
cmp -s "$OUT/checkpoint-2-reconstruction.png" "$OUT/reconstruction-0002.png" \
  || fail "--visualize of checkpoint-2.pth differs from reconstruction-0002.png"
grep -q "Start training" "$TEST_TMPDIR/vis.log" && fail "--visualize trained"
pretrain_abs="$(readlink -f "$PRETRAIN")"
(cd "$TEST_TMPDIR" && "$pretrain_abs" --visualize "$OUT/checkpoint-2.pth" --vis_output pics/v.png \
  --vis_images 1 >/dev/null 2>"$TEST_TMPDIR/vis.log") || { cat "$TEST_TMPDIR/vis.log"; fail "--vis_output"; }
[[ -s "$TEST_TMPDIR/pics/v.png" ]] || fail "--vis_output pics/v.png not written (relative to the cwd)"
"$PRETRAIN" --visualize "$OUT/fcmae_weights.pt" >/dev/null 2>"$TEST_TMPDIR/err" && fail "--visualize took a non-checkpoint"
grep -q "fcmae_weights.pt" "$TEST_TMPDIR/err" || fail "unclear --visualize error: $(cat "$TEST_TMPDIR/err")"
# `pretrain visualize CHECKPOINT` is the spelling to use (the same picture); the old one above
# still works and says it is deprecated.
"$PRETRAIN" visualize "$OUT/checkpoint-2.pth" --vis_output "$TEST_TMPDIR/sub.png" \
  >"$TEST_TMPDIR/sub.out" 2>"$TEST_TMPDIR/sub.log" \
  || { cat "$TEST_TMPDIR/sub.log"; fail "pretrain visualize exited with $?"; }
[[ "$(cat "$TEST_TMPDIR/sub.out")" == "$TEST_TMPDIR/sub.png" ]] \
  || fail "pretrain visualize printed '$(cat "$TEST_TMPDIR/sub.out")'"
cmp -s "$TEST_TMPDIR/sub.png" "$OUT/reconstruction-0002.png" \
  || fail "pretrain visualize of checkpoint-2.pth differs from reconstruction-0002.png"
grep -q "deprecated" "$TEST_TMPDIR/sub.log" && fail "pretrain visualize said it is deprecated"
"$PRETRAIN" --visualize "$OUT/checkpoint-2.pth" --vis_output "$TEST_TMPDIR/old.png" >/dev/null \
  2>"$TEST_TMPDIR/old.log" || { cat "$TEST_TMPDIR/old.log"; fail "--visualize exited with $?"; }
grep -qF 'is deprecated; write `pretrain visualize CHECKPOINT' "$TEST_TMPDIR/old.log" \
  || fail "--visualize did not say it is deprecated: $(cat "$TEST_TMPDIR/old.log")"
"$PRETRAIN" visualize >/dev/null 2>"$TEST_TMPDIR/err"
[[ $? == 2 ]] || fail "pretrain visualize without a checkpoint did not exit 2"
grep -qF "usage: pretrain visualize CHECKPOINT" "$TEST_TMPDIR/err" || fail "no usage: $(cat "$TEST_TMPDIR/err")"

# ---- the handover: fine-tuning starts from the pre-trained encoder ---------------------------
FT_ARGS=(--data_set synthetic --input_size 64 --nb_classes 4 --synthetic_train_size 8
         --synthetic_eval_size 4 --batch_size 4 --epochs 1 --warmup_epochs 0 --num_threads 2)
for weights in fcmae_weights.pt checkpoint-2.pth; do
  "$FINETUNE" "${FT_ARGS[@]}" --finetune "$OUT/$weights" --output_dir "$TEST_TMPDIR/ft_$weights" \
    >/dev/null 2>"$TEST_TMPDIR/ft.log" || { tail "$TEST_TMPDIR/ft.log"; fail "finetune from $weights"; }
  grep -q "Load pre-trained checkpoint from: .*$weights" "$TEST_TMPDIR/ft.log" || fail "$weights: no load line"
  grep -q "Removing key .*mask_token from pretrained checkpoint" "$TEST_TMPDIR/ft.log" \
    || fail "$weights: the mask token was not dropped"
  loaded=$(sed -n 's/.* \([0-9]*\) tensors loaded$/\1/p' "$TEST_TMPDIR/ft.log")
  [[ "${loaded:-0}" -gt 100 ]] || fail "$weights: only '${loaded}' tensors loaded"
  # Only the final norm and the head (not pre-trained) may be left uninitialized.
  missing=$(sed -n 's/.*Weights not initialized from pretrained model: //p' "$TEST_TMPDIR/ft.log")
  for name in ${missing//,/ }; do
    [[ "$name" == norm.* || "$name" == head.* ]] || fail "$weights: encoder weight $name not loaded"
  done
  grep -q "Weights from pretrained model not used" "$TEST_TMPDIR/ft.log" \
    && fail "$weights: unused weights: $(grep 'not used' "$TEST_TMPDIR/ft.log")"
done
# A pre-training checkpoint is not a fine-tuning state: resume says to use finetune.
"$FINETUNE" "${FT_ARGS[@]}" --resume "$OUT/checkpoint-2.pth" >/dev/null 2>"$TEST_TMPDIR/err" \
  && fail "finetune resumed a pre-training checkpoint"
grep -q "is an FCMAE pre-training checkpoint.*use checkpoint.finetune" "$TEST_TMPDIR/err" \
  || fail "unclear error: $(cat "$TEST_TMPDIR/err")"

# ---- SIGTERM: save mid-epoch, exit 75; the relaunch auto-resumes and finishes ----------------
# The test-only tiny model (models/variants.h): 200 steps, for time to signal mid-epoch, are
# quick with it.
SIG_ARGS=(--data_set synthetic --synthetic_train_size 400 --input_size 64 --batch_size 4
          --epochs 2 --warmup_epochs 0 --decoder_embed_dim 32 --vis_images 0 --num_threads 1
          --print_freq 1 --output_dir "$TEST_TMPDIR/sig" --model convnextv2_test)
"$PRETRAIN" "${SIG_ARGS[@]}" 2>"$TEST_TMPDIR/sig1.log" &
pid=$!
for _ in $(seq 600); do
  grep -q 'Epoch: \[0\]  \[  3/100\]' "$TEST_TMPDIR/sig1.log" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -TERM "$pid"
wait "$pid"
rc=$?
[[ $rc == 75 ]] || { tail "$TEST_TMPDIR/sig1.log"; fail "SIGTERM: exit status $rc, want 75"; }
stop=$(sed -n 's/.*Stopping at epoch \([0-9]*\) step.*/\1/p' "$TEST_TMPDIR/sig1.log")
ls "$TEST_TMPDIR/sig"/checkpoint-"$stop"-step*.pth >/dev/null 2>&1 || fail "SIGTERM: no mid-epoch checkpoint"
grep -q 'exit_status: 75' "$TEST_TMPDIR/sig/manifest.pbtxt" || fail "manifest lacks exit status 75"
"$PRETRAIN" "${SIG_ARGS[@]}" 2>"$TEST_TMPDIR/sig2.log" \
  || { tail "$TEST_TMPDIR/sig2.log"; fail "resumed run exited with $?"; }
grep -q "Resume checkpoint .*checkpoint-$stop-step" "$TEST_TMPDIR/sig2.log" || fail "did not resume"
[[ $(wc -l <"$TEST_TMPDIR/sig/log.txt") == 2 ]] || fail "log.txt: $(cat "$TEST_TMPDIR/sig/log.txt")"
ls "$TEST_TMPDIR/sig"/checkpoint-*-step*.pth >/dev/null 2>&1 && fail "superseded step checkpoint kept"
# The resumed run's metrics.h5 equals an uninterrupted run's: every step once, in order.
steps=$(train_steps "$TEST_TMPDIR/sig/metrics.h5") || fail "metrics.h5 unreadable"
[[ "$steps" == "$(seq -s ' ' 0 $(( $(wc -w <<<"$steps") - 1 )))" ]] || fail "resumed metrics.h5 steps: $steps"
grep -q 'state: FINISHED' "$TEST_TMPDIR/sig/manifest.pbtxt" || fail "resumed manifest not FINISHED"
grep -q 'attempts: 2' "$TEST_TMPDIR/sig/manifest.pbtxt" || fail "resumed manifest: attempts"

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
grep -q -- "--visualize CHECKPOINT" "$TEST_TMPDIR/help" || fail "--help lacks --visualize"
grep -q -- "--vis_freq" "$TEST_TMPDIR/help" || fail "--help lacks --vis_freq"
echo PASS
