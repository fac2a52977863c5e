#!/usr/bin/env bash
# Preemption on a real Slurm cluster (tools/slurm/local_cluster.sh on localhost).
# 1. A sweep of two identical tiny finetune tasks; one gets the preemption signal mid-run
#    (scancel --signal=TERM reaches the srun'd binary), saves a checkpoint and exits 75; the
#    sbatch script requeues that array task alone, Slurm starts it again, it resumes into the
#    same run dir, and its metrics.h5 ends bitwise equal to the other task's, which ran through.
# 2. A job whose time limit is within checkpoint.preempt_lead_seconds stops by itself (no
#    signal) with status 75, and the resumed run ends equal too.
# Fails (never skips) when Slurm or munge is missing.
set -uo pipefail
source "$(dirname "$0")/slurm_test_lib.sh"
setup_slurm_test "$@"

# Two tasks with the same config (repeats with one seed); 3 epochs of 6 steps.
cat >preempt.pbtxt <<'PBTXT'
name: "preempt"
base_config {
  model { model: "convnextv2_atto" nb_classes: 4 input_size: 32 }
  data { data_set: "synthetic" synthetic_train_size: 96 synthetic_eval_size: 16 }
  aug { aa: "none" reprob: 0 }
  schedule { warmup_epochs: 0 }
  train { batch_size: 16 epochs: 3 num_threads: 1 device: "cpu" print_freq: 1 }
}
repeats: 2
seeds: 5
seeds: 5
slurm { cpus_per_task: 1 time: "00:10:00" max_parallel: 2 signal_lead_seconds: 60 }
PBTXT
"$LAUNCHER" sweep preempt.pbtxt >submit.txt 2>submit.err || fail "sweep: $(cat submit.err)"
SWEEP="$TEST_TMPDIR/sweeps/preempt"
JOB=$(sed -n 's/^job_ids: "\([0-9]*\)"$/\1/p' "$SWEEP/sweep_manifest.pbtxt")
[[ -n $JOB ]] || fail "no job id in the sweep manifest"
grep -q "preempt_lead_seconds: 60" "$SWEEP/tasks/task_000.pbtxt" || fail "task config lacks the lead time"

# Signal the task whose own job id is the array's id (the last one Slurm split off): requeueing
# it by $SLURM_JOB_ID would requeue the whole array.
victim=""
for _ in $(seq 1 120); do
  squeue -h -r -j "$JOB" -o "%i %A %t" >tasks.txt 2>&1 || true
  victim=$(awk -v j="$JOB" '$2 == j && $3 == "R" { sub(/.*_/, "", $1); print $1 }' tasks.txt)
  [[ -n $victim ]] && break
  sleep 1
done
[[ -n $victim ]] || fail "no running task has job id $JOB: $(cat tasks.txt)"
other=$((1 - victim))
log="$SWEEP/logs/${JOB}_$victim.out"
for _ in $(seq 1 1200); do
  grep -q 'Epoch: \[1\]  \[2/6\]' "$log" 2>/dev/null && break
  sleep 0.1
done
grep -q 'Epoch: \[1\]  \[2/6\]' "$log" || { cat "$log"; fail "task $victim never reached epoch 1"; }
scancel --signal=TERM "${JOB}_$victim" || fail "scancel --signal=TERM ${JOB}_$victim failed"
wait_for_job "$JOB" 150

cat "$log"
grep -q "Stopping at epoch [12] step [0-9]* on signal 15" "$log" || fail "task $victim did not stop on SIGTERM"
grep -q "task_00$victim exited 75 (checkpointed before the end): requeueing ${JOB}_$victim" "$log" \
  || fail "task $victim was not requeued"
grep -q "task_00$victim (job $JOB, array ${JOB}_$victim, restart 1)" "$log" || fail "task $victim did not restart"
grep -q "Resume checkpoint .*checkpoint-[12]-step[0-9]*.pth" "$log" || fail "task $victim did not resume mid-epoch"
grep -q "launcher: task_00$victim exited 0" "$log" || fail "task $victim did not finish"
other_log="$SWEEP/logs/${JOB}_$other.out"
grep -q "restart 1\|exited 75" "$other_log" && { cat "$other_log"; fail "task $other was requeued too"; }

/usr/bin/python3 "$CHECK" "$SWEEP/runs/task_00$victim" 18 3 attempts=2 slurm_array_task_id="$victim" \
  || fail "requeued run dir"
/usr/bin/python3 "$CHECK" "$SWEEP/runs/task_00$other" 18 3 attempts=1 || fail "uninterrupted run dir"
grep -q 'restart_count: "1"' "$SWEEP/runs/task_00$victim/manifest.pbtxt" || fail "manifest lacks restart_count 1"
"$LAUNCHER" compare "$SWEEP/runs/task_00$other" "$SWEEP/runs/task_00$victim" >compare.txt \
  || fail "requeued run differs from the uninterrupted one: $(cat compare.txt)"
grep -q "equal: 18 train rows and 3 eval rows are bitwise equal" compare.txt || fail "$(cat compare.txt)"
"$LAUNCHER" status "$SWEEP" >status.txt || fail "status failed"
grep -q "task_00$victim .*FINISHED  *2 " status.txt || { cat status.txt; fail "status does not show 2 attempts"; }

# ---- 2. near the time limit without a signal --------------------------------------------------
# A 1-minute job with a 60 s lead: the run stops at its second step boundary (never at its first:
# a run that cannot make progress must not be requeued forever). No --signal is asked for.
BIN="$SWEEP/bin/finetune"
TASK="$SWEEP/tasks/task_000.pbtxt"
srun --time=1 "$BIN" --config="$TASK" --output_dir "$TEST_TMPDIR/limit" \
  --set checkpoint.preempt_lead_seconds=60 >limit1.txt 2>&1
rc=$?
[[ $rc == 75 ]] || { cat limit1.txt; fail "the run near its time limit exited $rc, want 75"; }
grep -q "job [0-9]*: [0-9]* s left; the run saves and exits 75 when less than 60 s are left" limit1.txt \
  || { cat limit1.txt; fail "no time-limit line"; }
grep -q "Stopping at epoch 0 step 1 with [0-9]* s left before the job's time limit" limit1.txt \
  || { cat limit1.txt; fail "did not stop at step 1 for the time limit"; }
# Without a limit (the partition has none) the same command resumes and finishes.
srun "$BIN" --config="$TASK" --output_dir "$TEST_TMPDIR/limit" \
  --set checkpoint.preempt_lead_seconds=60 >limit2.txt 2>&1 || { cat limit2.txt; fail "resume exited $?"; }
grep -q "has no time limit" limit2.txt || { cat limit2.txt; fail "no 'no time limit' line"; }
"$LAUNCHER" compare "$SWEEP/runs/task_00$other" "$TEST_TMPDIR/limit" >compare2.txt \
  || fail "the run stopped for its time limit differs: $(cat compare2.txt)"
echo PASS
