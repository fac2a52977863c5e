#!/usr/bin/env bash
# End to end on a real Slurm cluster: starts a one-node cluster on localhost
# (tools/slurm/local_cluster.sh), submits a 2-task sweep of tiny finetune runs on synthetic data
# with `launcher sweep`, waits for both, and checks each run's manifest.pbtxt and metrics.h5, the
# Slurm logs and `launcher status`. Fails (never skips) when Slurm or munge is missing.
set -uo pipefail
source "$(dirname "$0")/slurm_test_lib.sh"
setup_slurm_test "$@"
cat >tiny.pbtxt <<'PBTXT'
name: "tiny"
base_config {
  model { model: "convnextv2_atto" nb_classes: 4 input_size: 32 }
  data { data_set: "synthetic" synthetic_train_size: 32 synthetic_eval_size: 8 }
  aug { aa: "none" reprob: 0 }
  schedule { warmup_epochs: 0 }
  train { batch_size: 16 epochs: 2 num_threads: 1 device: "cpu" print_freq: 1 }
}
axis { field: "blr" values: "1e-3" values: "4e-3" }
slurm { cpus_per_task: 1 time: "00:10:00" max_parallel: 2 }
PBTXT

# ---- bad sweeps are refused before anything is written or submitted -------------------------
sed 's/field: "blr"/field: "blrr"/' tiny.pbtxt >bad.pbtxt
"$LAUNCHER" sweep bad.pbtxt >/dev/null 2>err.txt
rc=$?
[[ $rc == 2 ]] || fail "bad sweep exited $rc, want 2"
grep -qF "axis 0 (blrr): unknown field 'blrr'" err.txt || fail "bad sweep message: $(cat err.txt)"
[[ ! -e sweeps/tiny ]] || fail "a refused sweep wrote its dir"

# ---- dry run: everything written, the script printed, nothing submitted ------------------------
"$LAUNCHER" sweep --dry_run --sweep_dir=dry tiny.pbtxt >dry.txt 2>dry.err || fail "dry run: $(cat dry.err)"
grep -qF "#SBATCH --array=0-1%2" dry.txt || fail "dry run did not print the script"
[[ -f dry/tasks/task_001.pbtxt && -x dry/bin/finetune ]] || fail "dry run did not write the sweep dir"
grep -q "job_ids" dry/sweep_manifest.pbtxt && fail "dry run recorded a job id"
# Under `bazel run` the launcher runs elsewhere: relative paths resolve against the user's
# directory, which Bazel passes as BUILD_WORKING_DIRECTORY.
(cd / && BUILD_WORKING_DIRECTORY="$TEST_TMPDIR" "$LAUNCHER" sweep --dry_run --sweep_dir=bwd tiny.pbtxt \
  >/dev/null 2>bwd.err) || fail "dry run from another directory: $(cat bwd.err)"
[[ -f $TEST_TMPDIR/bwd/tasks/task_000.pbtxt ]] || fail "--sweep_dir did not resolve against BUILD_WORKING_DIRECTORY"

# ---- the real sweep ------------------------------------------------------------------------------
"$LAUNCHER" sweep tiny.pbtxt >submit.txt 2>submit.err || fail "sweep: $(cat submit.err)"
SWEEP="$TEST_TMPDIR/sweeps/tiny"
JOB=$(sed -n 's/^job_ids: "\([0-9]*\)"$/\1/p' "$SWEEP/sweep_manifest.pbtxt")
[[ -n $JOB ]] || fail "no job id in the sweep manifest"
grep -qF "submitted $JOB (2 tasks) from $SWEEP" submit.txt || fail "submit output: $(cat submit.txt)"
"$LAUNCHER" sweep tiny.pbtxt >/dev/null 2>again.err && fail "a second submit into the same dir was accepted"
grep -q "already exists" again.err || fail "resubmit message: $(cat again.err)"

wait_for_job "$JOB" 300

for t in 0 1; do
  run="$SWEEP/runs/task_00$t"
  log="$SWEEP/logs/${JOB}_$t.out"
  [[ -f $log ]] || fail "no Slurm log $log"
  grep -q "launcher: task_00$t exited 0" "$log" || { cat "$log"; fail "task $t did not exit 0"; }
  /usr/bin/python3 "$CHECK" "$run" 4 2 slurm_array_job_id="$JOB" slurm_array_task_id="$t" \
    attempts=1 || { cat "$log"; fail "task $t run dir"; }
done
grep -q 'blr: 0.001$' "$SWEEP/runs/task_000/config.pbtxt" || fail "task 0 does not have blr 1e-3"
grep -q 'blr: 0.004$' "$SWEEP/runs/task_001/config.pbtxt" || fail "task 1 does not have blr 4e-3"

"$LAUNCHER" status "$SWEEP" >status.txt || fail "status failed"
cat status.txt
[[ $(grep -c "FINISHED         1      2" status.txt) == 2 ]] || fail "status does not show 2 finished runs"

# ---- data parallel under srun: 2 Slurm tasks train one run together (Gloo) --------------------
srun -n 2 "$SWEEP/bin/finetune" --data_set synthetic --nb_classes 4 --synthetic_train_size 64 \
  --synthetic_eval_size 30 --batch_size 8 --epochs 2 --warmup_epochs 0 --num_threads 1 \
  --num_workers 1 --output_dir "$TEST_TMPDIR/multi" >multi.txt 2>&1 || fail "2-task srun: $(tail -n 5 multi.txt)"
grep -q "distributed: rank 1 of 2 (local rank 1 of 2, from the Slurm" multi.txt || fail "srun ranks: $(head -n 20 multi.txt)"
grep -q "effective batch size: 16" multi.txt || fail "2 x 8 is not an effective batch of 16"
[[ $(grep -c "Accuracy of the model on the 30 test images" multi.txt) == 4 ]] || fail "each rank evaluates the 30 images twice"
grep -q 'ntasks: "2"' "$TEST_TMPDIR/multi/manifest.pbtxt" || fail "manifest lacks ntasks 2"
[[ $(wc -l <"$TEST_TMPDIR/multi/log.txt") == 2 ]] || fail "rank 0 alone writes log.txt"

# ---- report: text on stdout, and txt/csv/md/html files ------------------------------------------
"$LAUNCHER" report --format=csv "$SWEEP" >report.txt || fail "report failed"
[[ $(head -1 report.txt) == task,optim.blr,state,epochs,final_acc1,best_acc1,* ]] || fail "report header: $(head -1 report.txt)"
[[ $(grep -c ",FINISHED,2," report.txt) == 2 ]] || fail "report rows: $(cat report.txt)"
cmp -s report.txt "$SWEEP/report.csv" || fail "report.csv differs from the printed table"
# One chart per metric (train loss, eval acc@1, acc@5, loss, learning rate), both tasks in each.
[[ $(grep -o 'class="chart"' "$SWEEP/report.html" | wc -l) == 5 ]] || fail "report.html lacks 5 charts"
[[ $(grep -o "<polyline" "$SWEEP/report.html" | wc -l) == 10 ]] || fail "report.html lacks 2 curves per chart"
/usr/bin/python3 -c 'import sys, xml.dom.minidom; [xml.dom.minidom.parseString(s[:s.index("</svg>") + 6]) for s in open(sys.argv[1]).read().split("<svg")[1:] for s in ["<svg" + s]]' \
  "$SWEEP/report.html" || fail "report.html has malformed SVG"

# ---- reproduce: the recorded config rerun here gives bitwise the same metrics --------------------
"$LAUNCHER" reproduce "$SWEEP/runs/task_000" >repro.txt 2>repro.err || fail "reproduce: $(cat repro.txt repro.err)"
grep -qF "reproduced: 4 train rows and 2 eval rows are bitwise equal" repro.txt || fail "$(cat repro.txt)"
# A log that does not match (one loss changed by a tiny amount) is caught, exit status 1.
/usr/bin/python3 -c '
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["train/loss"][2] = f["train/loss"][2] * (1 + 1e-12)
' "$SWEEP/runs/task_001/metrics.h5" || fail "cannot edit metrics.h5"
"$LAUNCHER" reproduce --out_dir=repro1 "$SWEEP/runs/task_001" >repro1.txt 2>&1
rc=$?
[[ $rc == 1 ]] || fail "reproduce of a changed log exited $rc: $(cat repro1.txt)"
grep -qF "train row 2 (step 2): loss" repro1.txt || fail "no difference reported: $(cat repro1.txt)"
echo PASS
