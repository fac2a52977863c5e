#!/usr/bin/env bash
# Checkpoints through the finetune binary. On a signal: SIGUSR2 (the default preempt_signal) or SIGTERM mid-run
# makes it save a mid-epoch checkpoint and exit 75; launched again it auto-resumes and ends
# with exactly the state and log.txt of a run that was never stopped.
set -uo pipefail
FINETUNE="$1"
DIGEST="$2"
LAUNCHER="$3"
fail() { echo "FAIL: $*" >&2; exit 1; }
ARGS=(--data_set synthetic --nb_classes 4 --synthetic_train_size 96 --synthetic_eval_size 16
      --batch_size 16 --epochs 3 --warmup_epochs 0 --warmup_steps 2 --blr 8e-3 --drop_path 0.1
      --num_threads 1 --print_freq 1)

"$FINETUNE" "${ARGS[@]}" --output_dir "$TEST_TMPDIR/ref" 2>"$TEST_TMPDIR/ref.log" \
  || { tail "$TEST_TMPDIR/ref.log"; fail "reference run exited with $?"; }

# log.txt without its timing keys (the launcher knows them from the tasks' declared records);
# a failure prints its own line, so the diff fails too.
strip_timing() { "$LAUNCHER" log_without_timing "$1" || echo "log_without_timing failed on $1"; }

for sig in USR2 TERM; do
  out="$TEST_TMPDIR/run_$sig"
  "$FINETUNE" "${ARGS[@]}" --output_dir "$out" 2>"$out.log1" &
  pid=$!
  # Wait until epoch 1 is under way, then signal.
  for _ in $(seq 600); do
    grep -q 'Epoch: \[1\]  \[2/6\]' "$out.log1" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -"$sig" "$pid"
  wait "$pid"
  rc=$?
  [[ $rc == 75 ]] || { tail "$out.log1"; fail "SIG$sig: exit status $rc, want 75"; }
  # Where it stopped depends on when the signal landed (epoch 1 or 2).
  stop=$(sed -n 's/.*Stopping at epoch \([0-9]*\) step.*/\1/p' "$out.log1")
  [[ -n "$stop" ]] || { tail "$out.log1"; fail "SIG$sig: no stopping line"; }
  ls "$out"/checkpoint-"$stop"-step*.pth >/dev/null 2>&1 || fail "SIG$sig: no mid-epoch checkpoint"
  [[ $(wc -l <"$out/log.txt") == "$stop" ]] || fail "SIG$sig: log.txt should hold $stop rows"

  "$FINETUNE" "${ARGS[@]}" --output_dir "$out" 2>"$out.log2" \
    || { tail "$out.log2"; fail "SIG$sig: resumed run exited with $?"; }
  grep -q "Resume checkpoint .*checkpoint-$stop-step" "$out.log2" || fail "SIG$sig: did not resume"
  diff <(strip_timing "$TEST_TMPDIR/ref/log.txt") <(strip_timing "$out/log.txt") \
    || fail "SIG$sig: log.txt differs from the uninterrupted run"
  "$DIGEST" "$TEST_TMPDIR/ref/checkpoint-2.pth" model. optimizer. rng. >"$TEST_TMPDIR/a" || fail digest
  "$DIGEST" "$out/checkpoint-2.pth" model. optimizer. rng. >"$TEST_TMPDIR/b" || fail digest
  [[ $(wc -l <"$TEST_TMPDIR/a") -gt 300 ]] || fail "digest too short"
  diff "$TEST_TMPDIR/a" "$TEST_TMPDIR/b" || fail "SIG$sig: final state differs from the uninterrupted run"
done

# Retention and policy: save_ckpt_num 1 keeps one epoch file; save_ckpt false writes none.
"$FINETUNE" "${ARGS[@]}" --save_ckpt_num 1 --output_dir "$TEST_TMPDIR/keep1" 2>/dev/null || fail keep1
[[ "$(cd "$TEST_TMPDIR/keep1" && ls checkpoint-*.pth | tr '\n' ' ')" == "checkpoint-2.pth checkpoint-best.pth " ]] \
  || fail "retention: $(ls "$TEST_TMPDIR/keep1")"
"$FINETUNE" "${ARGS[@]}" --epochs 1 --save_ckpt false --output_dir "$TEST_TMPDIR/nosave" 2>/dev/null || fail nosave
! ls "$TEST_TMPDIR/nosave"/checkpoint* >/dev/null 2>&1 || fail "save_ckpt false still saved"

# Periodic mid-epoch saves (superseded, so removed, by the epoch's checkpoint).
"$FINETUNE" "${ARGS[@]}" --epochs 1 --save_ckpt_steps 4 --output_dir "$TEST_TMPDIR/steps" \
  2>"$TEST_TMPDIR/steps.log" || fail "save_ckpt_steps run"
grep -q "Saved .*/checkpoint-0-step4.pth" "$TEST_TMPDIR/steps.log" || fail "no step-4 checkpoint"
grep -q "Removed superseded .*/checkpoint-0-step4.pth" "$TEST_TMPDIR/steps.log" || fail "not removed"

# Evaluation only, from the best checkpoint, with the model's weights.
"$FINETUNE" "${ARGS[@]}" --eval true --resume "$TEST_TMPDIR/ref/checkpoint-best.pth" \
  2>"$TEST_TMPDIR/eval.log" || { tail "$TEST_TMPDIR/eval.log"; fail "eval exited with $?"; }
grep -q "Accuracy of the network on 16 test images" "$TEST_TMPDIR/eval.log" || fail "no eval line"
"$FINETUNE" "${ARGS[@]}" --eval true --eval_weights ema --resume "$TEST_TMPDIR/ref/checkpoint-best.pth" \
  >/dev/null 2>"$TEST_TMPDIR/err" && fail "eval of absent EMA weights succeeded"
grep -q "has no 'model_ema.\*' tensors" "$TEST_TMPDIR/err" || fail "ema error: $(cat "$TEST_TMPDIR/err")"

# Fine-tuning from our own checkpoint into a 5-class head: the 4-class head is dropped and
# re-initialized, every other weight loads; the PyTorch/FCMAE formats are covered by
# //tests/checkpoint:checkpoint_test.
"$FINETUNE" "${ARGS[@]}" --epochs 1 --nb_classes 5 --finetune "$TEST_TMPDIR/ref/checkpoint-2.pth" \
  --output_dir "$TEST_TMPDIR/ft" 2>"$TEST_TMPDIR/ft.log" || { tail "$TEST_TMPDIR/ft.log"; fail "finetune init"; }
grep -q "Load pre-trained checkpoint from: .*checkpoint-2.pth (convnextv2 checkpoint, key 'model')" \
  "$TEST_TMPDIR/ft.log" || fail "no load line"
grep -q "Removing key head.weight from pretrained checkpoint" "$TEST_TMPDIR/ft.log" || fail "head kept"
grep -q "Weights not initialized from pretrained model: head.bias, head.weight" "$TEST_TMPDIR/ft.log" \
  || fail "missing keys not reported"

# Bad input: a pre-training style file given to resume, a bad signal name.
echo "not a checkpoint" >"$TEST_TMPDIR/bad.pth"
"$FINETUNE" "${ARGS[@]}" --resume "$TEST_TMPDIR/bad.pth" >/dev/null 2>"$TEST_TMPDIR/err" && fail "bad resume ok"
grep -q "use checkpoint.finetune" "$TEST_TMPDIR/err" || fail "resume error: $(cat "$TEST_TMPDIR/err")"
"$FINETUNE" "${ARGS[@]}" --preempt_signal SIGFOO >/dev/null 2>"$TEST_TMPDIR/err"
[[ $? == 2 ]] || fail "bad signal name: want exit 2"
grep -q "checkpoint.preempt_signal: 'SIGFOO' is not a signal name" "$TEST_TMPDIR/err" || fail "signal error"
echo PASS
