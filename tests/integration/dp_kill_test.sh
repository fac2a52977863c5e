#!/usr/bin/env bash
# A rank of a data-parallel run killed with SIGKILL. Two ranks over Gloo on localhost, for
# `finetune` and `pretrain` (tiny synthetic data, a mid-epoch checkpoint every 2 steps): each
# launch but the last gives one rank a fault point (util/fault_points.h) at which it SIGKILLs
# itself: rank 1 inside a step or during evaluation, rank 0 (the one that writes) inside a
# checkpoint write, before its rename, between the files of one save, inside the metrics.h5
# write, while writing a picture, before the run's last checkpoint is renamed, while writing the
# final manifest. After each kill:
#   - the surviving rank exits with status 1 within --dist_timeout, with the message
#     "rank R: all-reduce failed (another rank exited, hung past the timeout or lost its
#     connection)" ("barrier failed" when rank 0 dies writing the run's last files, which the
#     others wait for); only a kill after the last checkpoint (the final manifest) lets the
#     other exit 0, the run being complete;
#   - a surviving rank 0 records exit status 1 in the manifest;
#   - both ranks are relaunched with the same command; they resume from the same checkpoint, the
#     one the plan expects (the newest complete one), and no invalid (torn) checkpoint is found.
# When a launch ends by itself, the record must equal an unstopped two-rank run's: `launcher
# compare` (metrics.h5 row by row, timing columns excepted), log.txt (timing excepted), the final
# weights, optimizer state and generators, pre-training's fcmae_weights.pt and pictures; no
# temporary file is left and the manifest counts every launch.
#
# DPKILL_TRACE=1 passes CONVNEXTV2_FAULT_TRACE=1 to every rank (to see where a kill lands).
set -uo pipefail
FINETUNE="$1"
PRETRAIN="$2"
LAUNCHER="$3"
DIGEST="$4"
T="$TEST_TMPDIR"
TIMEOUT=30  # --dist_timeout (s): the longest a survivor may take to notice (~0.3 s here)
fail() { echo "FAIL: $*" >&2; exit 1; }
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now() { date +%s.%N; }
elapsed() { /usr/bin/python3 -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$@"; }

# wait_deadline PID SECONDS: waits for PID (a subshell of launch) at most SECONDS; then SIGKILLs
# its child and it, and returns 124. Otherwise returns its exit status.
wait_deadline() {
  local pid=$1 end=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    pkill -9 -P "$pid"
    kill -9 "$pid"
    wait "$pid"
    return 124
  fi
  wait "$pid"
}

# launch NAME N BINARY FAULT_RANK FAULT SURVIVOR_RC ARGS...: launch N of run NAME, both ranks at
# once, rank FAULT_RANK with CONVNEXTV2_FAULT=FAULT (-1 "": no fault). Sets RC0 and RC1. With a
# fault, that rank must die by SIGKILL and the other exit SURVIVOR_RC within the timeout: 1 with
# the clear message, or 0 where the run had already ended (only its manifest left to write).
launch() {
  local name=$1 n=$2 bin=$3 fault_rank=$4 fault=$5 survivor_rc=$6
  shift 6
  local port pids=() r log
  port=$(free_port)
  for r in 0 1; do
    local faults=()
    ((r == fault_rank)) && faults=(CONVNEXTV2_FAULT="$fault")
    [[ -n ${DPKILL_TRACE:-} ]] && faults+=(CONVNEXTV2_FAULT_TRACE=1)
    # In a subshell, whose "Killed" notice goes to the log: exits 137 when the rank is killed.
    (env "${faults[@]}" RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 \
      MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$bin" "$@" --dist_timeout $TIMEOUT \
      --output_dir "$T/$name"; exit $?) >"$T/$name.launch$n.rank$r.log" 2>&1 &
    pids+=($!)
  done
  if ((fault_rank < 0)); then
    wait_deadline "${pids[0]}" 300; RC0=$?
    wait_deadline "${pids[1]}" 60; RC1=$?
    return
  fi
  local survivor=$((1 - fault_rank)) died rc took
  wait_deadline "${pids[$fault_rank]}" 300
  rc=$?
  died=$(now)
  if [[ $rc != 137 ]]; then
    wait_deadline "${pids[$survivor]}" 60
    tail -n 5 "$T/$name.launch$n.rank$fault_rank.log"
    fail "$name launch $n: rank $fault_rank with CONVNEXTV2_FAULT=$fault exited $rc, not by SIGKILL (137)"
  fi
  wait_deadline "${pids[$survivor]}" $((TIMEOUT + 10))
  rc=$?
  took=$(elapsed "$died" "$(now)")
  log="$T/$name.launch$n.rank$survivor.log"
  [[ $rc != 124 ]] || fail "$name launch $n: rank $survivor still running $took s after rank $fault_rank died"
  if [[ $rc != "$survivor_rc" ]]; then
    tail -n 5 "$log"
    fail "$name launch $n: rank $survivor exited $rc after rank $fault_rank died at $fault" \
      "(want $survivor_rc)"
  fi
  /usr/bin/python3 -c 'import sys; sys.exit(float(sys.argv[1]) >= float(sys.argv[2]))' \
    "$took" $TIMEOUT || fail "$name launch $n: rank $survivor took $took s (dist_timeout $TIMEOUT)"
  local what="rank $survivor exited 0 (the run had ended)"
  local clear='failed \(another rank exited, hung past the timeout or lost its connection\)'
  if ((survivor_rc != 0)); then
    what=$(grep -Eo "rank $survivor: (all-reduce|barrier) $clear" "$log") \
      || fail "$name launch $n: no clear error from rank $survivor: $(tail -n 3 "$log")"
  fi
  echo "$name launch $n: rank $fault_rank killed at $fault; $took s later: $what"
}

# log.txt without its timing keys (the launcher knows them from the tasks' declared records);
# a failure prints its own line, so the diff fails too.
strip_timing() { "$LAUNCHER" log_without_timing "$1" || echo "log_without_timing failed on $1"; }

# soak NAME BINARY PLAN_ARRAY_NAME ARGS...: an unstopped two-rank run NAME_ref, then run NAME
# launched once per plan entry ("RANK FAULT SURVIVOR_RC RESUME": that rank killed at FAULT, the
# next launch resumes from the checkpoint RESUME) and once more without faults, which must end
# the run; then its record is compared with NAME_ref's.
soak() {
  local name=$1 bin=$2 n=0 kills=0 entry rank fault survivor_rc resume expect=""
  local -n plan=$3
  shift 3
  local out="$T/$name"
  launch "${name}_ref" 1 "$bin" -1 "" 0 "$@"
  [[ $RC0 == 0 && $RC1 == 0 ]] \
    || { tail -n 5 "$T/${name}_ref.launch1.rank0.log"; fail "$name: unstopped run exited $RC0/$RC1"; }
  for entry in "${plan[@]}" "-1 none 0 -"; do
    n=$((n + 1))
    read -r rank fault survivor_rc resume <<<"$entry"
    launch "$name" $n "$bin" "$rank" "$fault" "$survivor_rc" "$@"
    if ((rank < 0)); then
      [[ $RC0 == 0 && $RC1 == 0 ]] || { tail -n 5 "$out.launch$n".rank*.log
        fail "$name: the launch after the kills exited $RC0/$RC1"; }
    else
      kills=$((kills + 1))
      # A surviving rank 0 records the failure.
      ((rank == 0)) || grep -q "^exit_status: 1$" "$out/manifest.pbtxt" \
        || fail "$name launch $n: the manifest does not record the failure"
    fi
    if [[ -n $expect ]]; then  # both ranks resumed from the same checkpoint, never a torn one
      local r0 r1
      r0=$(grep -o "Resume checkpoint [^:]*" "$out.launch$n.rank0.log")
      r1=$(grep -o "Resume checkpoint [^:]*" "$out.launch$n.rank1.log")
      [[ -n $r0 && $r0 == "$r1" ]] || fail "$name launch $n: rank 0 '$r0', rank 1 '$r1'"
      [[ $r0 == "Resume checkpoint $out/$expect" ]] || fail "$name launch $n: '$r0', not $expect:" \
        "the kill of launch $((n - 1)) landed elsewhere (see where with DPKILL_TRACE=1)"
      ! grep -h "skipping invalid checkpoint" "$out.launch$n".rank*.log \
        || fail "$name launch $n: a torn checkpoint was visible"
    fi
    expect=$resume
  done
  ls "$out"/*.tmp.* 2>/dev/null && fail "$name: temporary files left behind"
  grep -q "^attempts: $n$" "$out/manifest.pbtxt" && grep -q "^state: FINISHED" "$out/manifest.pbtxt" \
    || fail "$name: manifest: $(grep -E '^(attempts|exit_status|state)' "$out/manifest.pbtxt")"
  "$LAUNCHER" compare "$T/${name}_ref" "$out" >"$out.compare" 2>&1 \
    || { cat "$out.compare"; fail "$name: metrics.h5 differs from the unstopped run"; }
  grep -q "^equal: " "$out.compare" || fail "$name: launcher compare said: $(cat "$out.compare")"
  diff <(strip_timing "$T/${name}_ref/log.txt") <(strip_timing "$out/log.txt") \
    || fail "$name: log.txt differs from the unstopped run"
  local last
  last=$(cd "$T/${name}_ref" && ls checkpoint-*[0-9].pth | sort -t- -k2 -n | tail -1)
  "$DIGEST" "$T/${name}_ref/$last" model. optimizer. rng. >"$out.digest_ref" || fail "digest of ${name}_ref/$last"
  "$DIGEST" "$out/$last" model. optimizer. rng. >"$out.digest" || fail "digest of $name/$last"
  [[ $(wc -l <"$out.digest") -gt 100 ]] || fail "$name: digest too short"
  cmp -s "$out.digest_ref" "$out.digest" || fail "$name: $last differs from the unstopped run's"
  echo "$name: $kills SIGKILLs survived in $n launches; $(cat "$out.compare")"
  TOTAL_KILLS=$((TOTAL_KILLS + kills))
}
TOTAL_KILLS=0

# Fault occurrences count from each launch's start. A launch writes config.pbtxt, manifest.pbtxt
# and metrics.h5 first (atomic_write 1-3, hdf5_write 1-20); a save flushes metrics.h5 (20
# hdf5_write, an atomic_write) before the checkpoint's atomic_write; the end writes metrics.h5
# and manifest.pbtxt once more. (DPKILL_TRACE=1 shows them.)
# The test-only tiny model (models/variants.h): what survives a kill does not depend on the model.
FT=(--data_set synthetic --nb_classes 4 --synthetic_train_size 64 --synthetic_eval_size 16
    --input_size 32 --batch_size 8 --epochs 2 --warmup_epochs 0 --warmup_steps 2 --blr 8e-3
    --drop_path 0.1 --num_threads 1 --print_freq 1 --save_ckpt_steps 2 --model convnextv2_test)
# 4 steps per epoch, a checkpoint after step 1 and at the end of each epoch.
FT_PLAN=(
  # rank 1 inside epoch 0's step 2
  "1 train_step:3 1 checkpoint-0-step2.pth"
  # rank 0: checkpoint-best, the log.txt row and metrics.h5 written, checkpoint-0.pth fsynced,
  # not renamed
  "0 atomic_rename:6 1 checkpoint-0-step2.pth"
  # rank 1 during epoch 0's evaluation
  "1 eval_batch:1 1 checkpoint-0-step2.pth"
  # rank 0: checkpoint-0.pth renamed, the step checkpoint not yet removed
  "0 save_between_files:1 1 checkpoint-0.pth"
  # rank 0 inside metrics.h5 before epoch 1's step-2 checkpoint
  "0 hdf5_write:30 1 checkpoint-0.pth"
)
soak finetune "$FINETUNE" FT_PLAN "${FT[@]}"

PT=(--data_set synthetic --synthetic_train_size 32 --input_size 64 --batch_size 4 --epochs 2
    --warmup_epochs 0 --blr 2e-2 --decoder_embed_dim 32 --vis_images 2 --num_threads 1
    --print_freq 1 --save_ckpt_steps 2 --model convnextv2_test)
# 4 steps per epoch; an epoch ends with its picture, fcmae_weights.pt, the log.txt row,
# metrics.h5 and the checkpoint.
PT_PLAN=(
  # rank 0 writing epoch 0's picture
  "0 atomic_write:6 1 checkpoint-0-step2.pth"
  # rank 0 inside epoch 1's step 2
  "0 train_step:5 1 checkpoint-1-step2.pth"
  # rank 1 inside the same step
  "1 train_step:1 1 checkpoint-1-step2.pth"
  # rank 0: the last checkpoint fsynced, not renamed (rank 1 waits at the end for it)
  "0 atomic_rename:7 1 checkpoint-1-step2.pth"
  # rank 0 writing the final manifest: the run had ended, rank 1 exits 0
  "0 atomic_write:9 0 checkpoint-1.pth"
)
soak pretrain "$PRETRAIN" PT_PLAN "${PT[@]}"
cmp "$T/pretrain_ref/fcmae_weights.pt" "$T/pretrain/fcmae_weights.pt" \
  || fail "pretrain: fcmae_weights.pt differs from the unstopped run"
for png in "$T"/pretrain_ref/*.png; do
  cmp "$png" "$T/pretrain/$(basename "$png")" || fail "pretrain: $(basename "$png") differs"
done
echo "PASS: $TOTAL_KILLS SIGKILLs of one rank of two survived"
