#!/usr/bin/env bash
# What users of the official scripts look at, through the real binaries:
# - `--log_dir`: TensorBoard event files with the official tags and steps, read back by the
#   `tensorboard` package (fine-tuning per micro-batch, perf/* per epoch, pre-training at
#   epoch_1000x), and a run killed mid-epoch and relaunched ends with each value exactly once and
#   equal to an unstopped run's;
# - log.txt's train_lr / train_min_lr / train_weight_decay are the epoch's means, and under
#   mixup there is no class accuracy (log.txt, progress lines, TensorBoard);
# - evaluation prints the official "Test:" progress lines;
# - `--eval True` without `--resume` evaluates output_dir's newest checkpoint (auto-resume);
# - checkpoint-best-ema.pth loads with `--finetune` and the default model_key (it holds `model`
#   as the official file does, besides `model_ema`), and torch.load opens it.
set -uo pipefail
FINETUNE="$1"
PRETRAIN="$2"
READ_EVENTS="$3"
T="$TEST_TMPDIR"
TB_PYTHON=/opt/convnextv2-venv/bin/python
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -x $TB_PYTHON ]] || fail "$TB_PYTHON is missing: run tools/setup.sh (it installs tensorboard there)"

# The test-only tiny model (models/variants.h): the logs do not depend on the model.
FT=(--data_set synthetic --nb_classes 4 --synthetic_train_size 48 --synthetic_eval_size 16
    --input_size 32 --batch_size 8 --epochs 2 --warmup_epochs 0 --warmup_steps 3 --blr 8e-3
    --num_threads 1 --print_freq 1 --model_ema true --model_ema_eval true --model_ema_decay 0.9
    --model convnextv2_test)

# events DIR: "raw TAG STEP VALUE" lines of every event file, as TensorBoard's loader reads them.
events() { "$TB_PYTHON" "$READ_EVENTS" "$1" | grep '^raw ' | sort; }

# ---- fine-tuning, float32, no mixup --------------------------------------------------------------
"$FINETUNE" "${FT[@]}" --output_dir "$T/ft" --log_dir "$T/ft/tb" >/dev/null 2>"$T/ft.log" \
  || { tail -n 20 "$T/ft.log"; fail "finetune exited $?"; }
grep -q "TensorBoard events: $T/ft/tb/events.out.tfevents." "$T/ft.log" || fail "no events file line"
events "$T/ft/tb" >"$T/ft.events" || fail "tensorboard could not read $T/ft/tb"
/usr/bin/python3 - "$T/ft.events" "$T/ft/log.txt" <<'EOF' || fail "fine-tuning events (above)"
import collections, json, sys
values = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    _, tag, step, value = line.split()
    assert int(step) not in values[tag], (tag, step, "twice")
    values[tag][int(step)] = float(value)
want = {"loss/loss", "loss/class_acc", "opt/lr", "opt/min_lr", "opt/weight_decay",
        "perf/test_acc1", "perf/test_acc5", "perf/test_loss",
        "perf/test_acc1_ema", "perf/test_acc5_ema", "perf/test_loss_ema"}
assert set(values) == want, sorted(set(values) ^ want)  # no opt/grad_norm without AMP
for tag in want:
    steps = sorted(values[tag])
    assert steps == (list(range(2)) if tag.startswith("perf/") else list(range(12))), (tag, steps)
rows = [json.loads(l) for l in open(sys.argv[2])]
close = lambda a, b: abs(a - b) <= 2e-6 * max(1.0, abs(b))   # TensorBoard keeps float32
for e, row in enumerate(rows):
    mean = lambda tag: sum(values[tag][s] for s in range(6 * e, 6 * e + 6)) / 6
    # log.txt's lr, min_lr, weight_decay are the epoch's means (the warmup makes lr vary).
    for key, tag in [("train_lr", "opt/lr"), ("train_min_lr", "opt/min_lr"),
                     ("train_weight_decay", "opt/weight_decay"), ("train_loss", "loss/loss"),
                     ("train_class_acc", "loss/class_acc")]:
        assert close(row[key], mean(tag)), (e, key, row[key], mean(tag))
    for key, tag in [("test_acc1", "perf/test_acc1"), ("test_loss_ema", "perf/test_loss_ema")]:
        assert close(row[key], values[tag][e]), (e, key, row[key], values[tag][e])
assert len({values["opt/lr"][s] for s in range(6)}) > 1, "lr did not vary in epoch 0"
EOF

# Evaluation shows the official progress lines (every 10 batches and the last, then the total).
grep -q "Test:  \[0/2\]  eta: " "$T/ft.log" || fail "no 'Test:  [0/2]' progress line"
grep -q "Test:  \[1/2\]  eta: .*  acc1: " "$T/ft.log" || fail "no last 'Test:' progress line"
grep -q "Test: Total time: " "$T/ft.log" || fail "no 'Test: Total time' line"

# ---- --eval without --resume: the newest checkpoint of output_dir, as the official script ----------
"$FINETUNE" "${FT[@]}" --output_dir "$T/ft" --eval true >/dev/null 2>"$T/eval.log" \
  || { tail -n 5 "$T/eval.log"; fail "--eval true without --resume exited $?"; }
grep -q "auto_resume: evaluating the newest checkpoint of $T/ft" "$T/eval.log" || fail "no auto_resume line"
grep -q "Evaluating the model weights of $T/ft/checkpoint-1.pth (epoch 1)" "$T/eval.log" \
  || fail "did not evaluate checkpoint-1.pth: $(grep -i evaluat "$T/eval.log")"
acc_eval=$(sed -n 's/.*Accuracy of the network on 16 test images: \([0-9.]*\)%.*/\1/p' "$T/eval.log")
acc_log=$(sed -n 2p "$T/ft/log.txt" | sed 's/.*"test_acc1": \([0-9.e+-]*\).*/\1/')
awk -v a="$acc_eval" -v b="$acc_log" 'BEGIN { exit !(a != "" && a - b < 1e-3 && b - a < 1e-3) }' \
  || fail "evaluated accuracy '$acc_eval' != the run's last test_acc1 $acc_log"
mkdir -p "$T/empty"
"$FINETUNE" "${FT[@]}" --output_dir "$T/empty" --eval true >/dev/null 2>"$T/eval_empty.log" \
  && fail "--eval true on an output_dir without checkpoints succeeded"
grep -q "holds no checkpoint-N.pth to evaluate (auto_resume)" "$T/eval_empty.log" \
  || fail "unclear error: $(tail -n 2 "$T/eval_empty.log")"

# ---- checkpoint-best-ema.pth: --finetune with the default model_key loads it ------------------------
[[ -f $T/ft/checkpoint-best-ema.pth ]] || fail "no checkpoint-best-ema.pth"
"$FINETUNE" "${FT[@]}" --finetune "$T/ft/checkpoint-best-ema.pth" --eval true >/dev/null \
  2>"$T/best_ema.log" || { tail -n 5 "$T/best_ema.log"; fail "--finetune checkpoint-best-ema.pth exited $?"; }
grep -q "Load pre-trained checkpoint from: $T/ft/checkpoint-best-ema.pth .*key 'model'" "$T/best_ema.log" \
  || fail "best-ema not loaded by its 'model' key: $(grep -i load "$T/best_ema.log")"
/usr/bin/python3 - "$T/ft/checkpoint-best-ema.pth" <<'EOF' || fail "torch.load of checkpoint-best-ema.pth"
import sys, torch
ckpt = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
assert "model" in ckpt and "model_ema" in ckpt, sorted(ckpt)
assert ckpt["model"].keys() == ckpt["model_ema"].keys()
assert any(not torch.equal(ckpt["model"][k], ckpt["model_ema"][k]) for k in ckpt["model"])
EOF

# ---- mixup + AMP + update_freq 2: no class accuracy, grad_norm at optimizer steps ----------------
"$FINETUNE" "${FT[@]}" --mixup 0.8 --use_amp true --update_freq 2 --batch_size 4 \
  --output_dir "$T/mix" --log_dir "$T/mix/tb" >/dev/null 2>"$T/mix.log" \
  || { tail -n 20 "$T/mix.log"; fail "mixup run exited $?"; }
grep -q "train_class_acc" "$T/mix/log.txt" && fail "log.txt has train_class_acc under mixup"
grep "Epoch: \[0\]" "$T/mix.log" | grep -q "class_acc" && fail "progress line shows class_acc under mixup"
events "$T/mix/tb" >"$T/mix.events" || fail "tensorboard could not read $T/mix/tb"
grep -q " loss/class_acc " "$T/mix.events" && fail "loss/class_acc written under mixup"
steps=$(awk '$2 == "opt/grad_norm" { printf "%s ", $3 }' "$T/mix.events" | tr ' ' '\n' | sort -n | tr '\n' ' ')
[[ $steps == "1 3 5 7 9 11 13 15 17 19 21 23 " ]] || fail "opt/grad_norm steps: '$steps'"
[[ $(grep -c " loss/loss " "$T/mix.events") == 24 ]] || fail "not 24 loss/loss values"
# metrics.h5 keeps what log.txt and TensorBoard do not: the AMP loss scale after each step
# (GradScaler's 2^16 until an overflow; bf16 has none here) and the loader wait, data_time;
# the float32 run has data_time but no loss_scale column.
/usr/bin/python3 - "$T/mix/metrics.h5" "$T/ft/metrics.h5" "$T/mix/log.txt" "$T/mix.events" <<'EOF' \
  || fail "loss_scale / data_time in metrics.h5 (above)"
import sys, h5py, numpy as np
amp, fp32 = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
scale = amp["train/loss_scale"][:]
assert scale.dtype == np.float64 and len(scale) == 24 and (scale == 65536.0).all(), scale
for f in (amp, fp32):
    t = f["train/data_time"][:]
    assert len(t) == len(f["train/step"]) and np.isfinite(t).all() and (t >= 0).all(), t
assert "loss_scale" not in fp32["train"], list(fp32["train"])
for path in sys.argv[3:]:
    text = open(path).read()
    assert "loss_scale" not in text and "data_time" not in text, path
EOF

# ---- killed mid-epoch and relaunched: every value once, equal to the unstopped run --------------
CONVNEXTV2_FAULT=train_step:9 "$FINETUNE" "${FT[@]}" --save_ckpt_steps 4 --output_dir "$T/kill" \
  --log_dir "$T/kill/tb" >/dev/null 2>"$T/kill1.log"
rc=$?
[[ $rc == 137 ]] || fail "the faulted launch exited $rc, not 137 (SIGKILL)"
"$FINETUNE" "${FT[@]}" --save_ckpt_steps 4 --output_dir "$T/kill" --log_dir "$T/kill/tb" >/dev/null \
  2>"$T/kill2.log" || { tail -n 20 "$T/kill2.log"; fail "the relaunch exited $?"; }
# Killed in global step 8 (epoch 1, step 2), just after the mid-epoch save before it.
grep -q "Resume checkpoint $T/kill/checkpoint-1-step2.pth: epoch 1, step 2" "$T/kill2.log" \
  || fail "the relaunch did not resume from checkpoint-1-step2.pth: $(grep -i resum "$T/kill2.log" | head -3)"
"$FINETUNE" "${FT[@]}" --save_ckpt_steps 4 --output_dir "$T/whole" --log_dir "$T/whole/tb" \
  >/dev/null 2>"$T/whole.log" || fail "the unstopped run exited $?"
events "$T/kill/tb" >"$T/kill.events" || fail "tensorboard could not read $T/kill/tb"
events "$T/whole/tb" >"$T/whole.events"
diff "$T/whole.events" "$T/kill.events" >"$T/kill.diff" \
  || { head -n 20 "$T/kill.diff"; fail "the resumed run's TensorBoard values differ from the unstopped run's"; }

# ---- pre-training: loss/train_loss and opt/lr per optimizer step at epoch_1000x -----------------
"$PRETRAIN" --model convnextv2_test --data_set synthetic --synthetic_train_size 24 --input_size 64 \
  --batch_size 4 --update_freq 2 --epochs 2 --warmup_epochs 1 --decoder_embed_dim 32 --num_threads 1 \
  --output_dir "$T/pt" --log_dir "$T/pt/tb" >/dev/null 2>"$T/pt.log" \
  || { tail -n 20 "$T/pt.log"; fail "pretrain exited $?"; }
events "$T/pt/tb" >"$T/pt.events" || fail "tensorboard could not read $T/pt/tb"
/usr/bin/python3 - "$T/pt.events" "$T/pt/log.txt" <<'EOF' || fail "pre-training events (above)"
import collections, json, sys
values = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    _, tag, step, value = line.split()
    values[tag][int(step)] = float(value)
assert set(values) == {"loss/train_loss", "opt/lr"}, sorted(values)
# 6 micro-batches per epoch, update_freq 2: the group ends at data_iter_step 1, 3, 5.
want = [int((i / 6 + e) * 1000) for e in range(2) for i in (1, 3, 5)]
for tag in values:
    assert sorted(values[tag]) == want, (tag, sorted(values[tag]), want)
assert values["opt/lr"][want[0]] < values["opt/lr"][want[2]], "no warmup in opt/lr"
EOF
grep -q "reconstructions of .* images: writing \|weights of epoch 1: writing " "$T/pt.log" \
  || fail "no line before pre-training's picture or weight save"
grep -q "weights of epoch 1 written in " "$T/pt.log" || fail "no weight save time"
echo PASS
