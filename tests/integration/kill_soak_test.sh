#!/usr/bin/env bash
# Nothing lost under SIGKILL. A short fine-tuning run and a short FCMAE pre-training run (a
# mid-epoch checkpoint every 2 steps) are killed with SIGKILL at named points (util/fault_points.h:
# inside a step, during evaluation, inside a checkpoint or config write, before a rename, inside
# the HDF5 write, between the files of one save, before a log.txt row) with seeded random delays,
# and relaunched each time until one launch ends by itself. Then the record must equal an
# unstopped run's: `launcher compare` (metrics.h5 row by row, timing columns excepted), log.txt
# (timing excepted), the final weights and optimizer state, and every file must open.
#
# Reproducible: the kills are drawn from SOAK_SEED (default 1); a failure prints the seed and the
# CONVNEXTV2_FAULT setting of every launch, so `SOAK_SEED=N bazel test ...` replays it.
set -uo pipefail
FINETUNE="$1"
PRETRAIN="$2"
LAUNCHER="$3"
DIGEST="$4"
fail() { echo "FAIL (SOAK_SEED=$SEED): $*" >&2; exit 1; }
SEED="${SOAK_SEED:-1}"
RANDOM=$SEED
KILLS_PER_RUN=12

# The test-only tiny model (models/variants.h): these runs check what survives kills, not what
# a model learns.
FT_ARGS=(--data_set synthetic --nb_classes 4 --synthetic_train_size 192 --synthetic_eval_size 16
         --input_size 32 --batch_size 16 --epochs 3 --warmup_epochs 0 --warmup_steps 2
         --blr 8e-3 --drop_path 0.1 --num_threads 1 --print_freq 1 --save_ckpt_steps 2
         --model convnextv2_test)
PT_ARGS=(--data_set synthetic --synthetic_train_size 48 --input_size 64 --batch_size 4
         --epochs 3 --warmup_epochs 0 --blr 2e-2 --decoder_embed_dim 32 --vis_images 2
         --num_threads 1 --print_freq 1 --save_ckpt_steps 2 --model convnextv2_test)
FT_POINTS=(train_step train_step eval_batch atomic_write atomic_rename hdf5_write
           save_between_files log_append)
PT_POINTS=(train_step train_step atomic_write atomic_rename hdf5_write save_between_files
           log_append)

# log.txt without its timing keys (the launcher knows them from the tasks' declared records);
# a failure prints its own line, so the diff fails too.
strip_timing() { "$LAUNCHER" log_without_timing "$1" || echo "log_without_timing failed on $1"; }

# soak NAME BINARY POINTS_ARRAY_NAME ARGS...: relaunch until done, KILLS_PER_RUN kills first.
soak() {
  local name=$1 bin=$2 points_name=$3
  shift 3
  local -n points=$points_name
  local out="$TEST_TMPDIR/$name" kills=0 launches=0 history=""
  while :; do
    launches=$((launches + 1))
    ((launches < 60)) || fail "$name: not done after $launches launches:$history"
    local fault="" delay=""
    if ((kills < KILLS_PER_RUN)); then
      # A kill costs a launch at most a few steps of progress (12 steps per epoch, a save every
      # 2), so all kills land before the run ends: the first to third time a frequent point is
      # reached, the first time for those reached once per epoch.
      local point="${points[RANDOM % ${#points[@]}]}" n=$((1 + RANDOM % 3))
      case $point in eval_batch | log_append) n=1 ;; esac
      fault="$point:$n"
      delay=$RANDOM
    fi
    history="$history
  launch $launches: CONVNEXTV2_FAULT=$fault CONVNEXTV2_FAULT_DELAY_SEED=$delay"
    CONVNEXTV2_FAULT="$fault" CONVNEXTV2_FAULT_DELAY_SEED="$delay" CONVNEXTV2_FAULT_DELAY_MAX_US=2000 \
      "$bin" "$@" --output_dir "$out" >"$out.stdout.$launches" 2>"$out.log.$launches"
    local rc=$?
    if ((rc == 137)); then
      kills=$((kills + 1))
      continue
    fi
    ((rc == 0)) || { tail -5 "$out.log.$launches"; fail "$name: launch $launches exited $rc:$history"; }
    # A launch whose fault point came too late ends normally before all kills were spent.
    ((kills >= KILLS_PER_RUN)) && break
    fail "$name: the run finished after only $kills kills (want $KILLS_PER_RUN):$history"
  done
  echo "$name: $kills SIGKILLs survived in $launches launches:$history"
  ls "$out"/*.tmp.* 2>/dev/null && fail "$name: temporary files left behind"
  "$LAUNCHER" compare "$TEST_TMPDIR/${name}_ref" "$out" >"$out.compare" 2>&1 \
    || { cat "$out.compare"; fail "$name: metrics.h5 differs from the unstopped run:$history"; }
  grep -q "^equal: " "$out.compare" || fail "$name: launcher compare said: $(cat "$out.compare")"
  cat "$out.compare"
  diff <(strip_timing "$TEST_TMPDIR/${name}_ref/log.txt") <(strip_timing "$out/log.txt") \
    || fail "$name: log.txt differs from the unstopped run:$history"
  /usr/bin/python3 -c 'import h5py, sys; f = h5py.File(sys.argv[1], "r"); f["train/loss"][:]' \
    "$out/metrics.h5" || fail "$name: h5py cannot read metrics.h5"
}

"$FINETUNE" "${FT_ARGS[@]}" --output_dir "$TEST_TMPDIR/finetune_ref" 2>"$TEST_TMPDIR/ft_ref.log" \
  || { tail "$TEST_TMPDIR/ft_ref.log"; fail "unstopped fine-tuning run exited with $?"; }
soak finetune "$FINETUNE" FT_POINTS "${FT_ARGS[@]}"
"$DIGEST" "$TEST_TMPDIR/finetune_ref/checkpoint-2.pth" model. optimizer. rng. >"$TEST_TMPDIR/a" \
  || fail digest
"$DIGEST" "$TEST_TMPDIR/finetune/checkpoint-2.pth" model. optimizer. rng. >"$TEST_TMPDIR/b" \
  || fail digest
# Every part of the state: the model's 70 tensors (the test model, 4 classes), the optimizer's
# state of each and the generators.
[[ $(grep -c "^model\." "$TEST_TMPDIR/a") == 70 && $(grep -c "^optimizer\." "$TEST_TMPDIR/a") -ge 140 \
   && $(grep -c "^rng\." "$TEST_TMPDIR/a") -ge 1 ]] || fail "digest incomplete: $(wc -l <"$TEST_TMPDIR/a") lines"
diff "$TEST_TMPDIR/a" "$TEST_TMPDIR/b" || fail "finetune: final state differs from the unstopped run"

"$PRETRAIN" "${PT_ARGS[@]}" --output_dir "$TEST_TMPDIR/pretrain_ref" 2>"$TEST_TMPDIR/pt_ref.log" \
  || { tail "$TEST_TMPDIR/pt_ref.log"; fail "unstopped pre-training run exited with $?"; }
soak pretrain "$PRETRAIN" PT_POINTS "${PT_ARGS[@]}"
"$DIGEST" "$TEST_TMPDIR/pretrain_ref/checkpoint-2.pth" model. optimizer. >"$TEST_TMPDIR/c" \
  || fail digest
"$DIGEST" "$TEST_TMPDIR/pretrain/checkpoint-2.pth" model. optimizer. >"$TEST_TMPDIR/d" || fail digest
diff "$TEST_TMPDIR/c" "$TEST_TMPDIR/d" || fail "pretrain: final state differs from the unstopped run"
cmp "$TEST_TMPDIR/pretrain_ref/fcmae_weights.pt" "$TEST_TMPDIR/pretrain/fcmae_weights.pt" \
  || fail "pretrain: fcmae_weights.pt differs from the unstopped run"
echo "PASS: $((2 * KILLS_PER_RUN)) SIGKILLs, 0 rows lost"
