#!/usr/bin/env bash
# device_check.sh's stop/resume check (tools/cuda/resume_check.sh) run on the CPU, where the GPU
# machine runs it on CUDA: a fine-tuning and a pre-training run stopped by SIGTERM at epoch 1,
# step 2, resumed from that step's checkpoint, ending at the loss of the unstopped runs; and
# the tolerance of its loss comparison.
set -uo pipefail
# shellcheck source=tools/cuda/resume_check.sh
source "$1"
FINETUNE=$2
PRETRAIN=$3
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/resume_check.XXXXXX")
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# 10 steps per epoch, so the progress lines pad the step ("[ 2/10]") as the GPU runs' do.
COMMON=(--device cpu --num_threads 1 --data_set synthetic --input_size 32 --epochs 3
        --warmup_epochs 0 --print_freq 1 --num_workers 1 --model convnextv2_test --batch_size 16)
out=$(run_resume_check finetune "$FINETUNE" test_loss "${COMMON[@]}" --nb_classes 10 \
  --synthetic_train_size 160 --synthetic_eval_size 32 --blr 2e-3 --drop_path 0.1)
rc=$?
echo "$out"
((rc == 0)) || fail "finetune: the check failed"
grep -q "stopped+resumed" <<<"$out" || fail "finetune: no comparison line"
grep -q "Stopping at epoch 1 step" "$WORK/finetune.stop1.log" ||
  fail "finetune: not stopped in epoch 1: $(grep Stopping "$WORK/finetune.stop1.log")"

out=$(run_resume_check pretrain "$PRETRAIN" train_loss "${COMMON[@]}" \
  --synthetic_train_size 160 --blr 1.5e-4 --decoder_embed_dim 16 --input_size 64)
rc=$?
echo "$out"
((rc == 0)) || fail "pretrain: the check failed"
grep -q "Stopping at epoch 1 step" "$WORK/pretrain.stop1.log" ||
  fail "pretrain: not stopped in epoch 1: $(grep Stopping "$WORK/pretrain.stop1.log")"

# The comparison itself: within 3x the run-to-run difference, clamped to 0.01%-0.5% of the loss.
compare_losses t loss 1.0 1.0 1.00005 >/dev/null || fail "equal runs: 0.005% off was refused"
compare_losses t loss 1.0 1.0 1.0002 >/dev/null && fail "equal runs: 0.02% off was accepted"
compare_losses t loss 1.0 1.001 1.0029 >/dev/null || fail "noise 0.1%: 0.29% off was refused"
compare_losses t loss 1.0 1.001 1.0031 >/dev/null && fail "noise 0.1%: 0.31% off was accepted"
compare_losses t loss 1.0 1.1 1.006 >/dev/null && fail "noise 10%: 0.6% off passed the 0.5% cap"
compare_losses t loss -2.0 -2.0 -2.0001 >/dev/null || fail "a negative loss: 0.005% off was refused"

if ((fails)); then echo "$fails failure(s)"; exit 1; fi
echo "PASS"
