#!/usr/bin/env bash
# Several hosts on a real Slurm cluster: tools/slurm/local_cluster.sh --nodes 3 makes three hosts
# (network namespaces on a bridge, each with its own address, hostname and slurmd); the 2-host
# parts run on node1 and node2.
# 1. A sweep with slurm { nodes: 2 ntasks_per_node: 1 }: each task is one srun step over two
#    hosts, rank 0's host comes from Slurm's NodeAddr, every rank's Gloo sockets cross the bridge
#    (ss inside each host); one task preempted mid-epoch (scancel --signal=TERM) stops on both
#    hosts at the same step, requeues, resumes and ends bitwise equal to the unstopped one; the
#    manifest keeps each attempt's node list; status shows both.
# 2. The one-host form of that preemption: 2 ranks on one node.
# 3. 2 hosts x 1 process x batch b train as 1 process x batch 2b (per-epoch test loss and top-1;
#    pre-training: train loss); 3 hosts x b as 1 x 3b (fine-tuning), every rank's Gloo sockets
#    reaching both other hosts.
# 4. Bad input: --nodes 0, more nodes than the cluster has, a rank 0 host that does not
#    resolve, one no rank reaches, a port taken on rank 0's host: refused within the timeout,
#    naming the field or host, and an existing run dir keeps its files.
# Needs root (network namespaces, Slurm's daemons as root): skipped, saying so, without it.
set -uo pipefail
source "$(dirname "$0")/slurm_test_lib.sh"
if [[ $(id -u) != 0 ]]; then
  echo "SKIPPED: needs root to make network namespaces and run Slurm's daemons"
  exit 0
fi
PRETRAIN=$(realpath "$4")
DIGEST=$(realpath "$5")
SLURM_TEST_NODES=3 setup_slurm_test "$@"
ID=$(sed -n 's/^ID=\([0-9]*\).*/\1/p' "$CLUSTER_DIR/net.env")
[[ -n $ID ]] || fail "no cluster id in $CLUSTER_DIR/net.env"
NET="10.213.$ID"
[[ $(sinfo -h -N -o "%N %T" | tr '\n' ' ') == "node1 idle node2 idle node3 idle " ]] || fail "nodes: $(sinfo -N)"
# The 2-host steps run on node1 and node2, so that the checks below know who is where.
SRUN2=(srun -N 2 --ntasks-per-node=1 -w "node[1-2]")

# preempted_sweep NAME NODES NTASKS_PER_NODE: two identical tasks; task 1 gets scancel
# --signal=TERM in epoch 1; sets SWEEP, JOB.
preempted_sweep() {
  local name="$1" nodes="$2" ntasks="$3" pin=""
  ((nodes == 2)) && pin='extra_sbatch_args: "--nodelist=node[1-2]"'
  cat >"$name.pbtxt" <<PBTXT
name: "$name"
base_config {
  model { model: "convnextv2_atto" nb_classes: 4 input_size: 32 }
  data { data_set: "synthetic" synthetic_train_size: 96 synthetic_eval_size: 16 num_workers: 1 }
  aug { aa: "none" reprob: 0 }
  schedule { warmup_epochs: 0 }
  train { batch_size: 8 epochs: 3 num_threads: 1 device: "cpu" print_freq: 1 }
  distributed { dist_timeout: 60 }
}
repeats: 2
seeds: 5
seeds: 5
slurm { nodes: $nodes ntasks_per_node: $ntasks cpus_per_task: 1 time: "00:10:00" max_parallel: 2 $pin }
PBTXT
  "$LAUNCHER" sweep "$name.pbtxt" >"$name.submit" 2>&1 || fail "sweep $name: $(cat "$name.submit")"
  SWEEP="$TEST_TMPDIR/sweeps/$name"
  JOB=$(sed -n 's/^job_ids: "\([0-9]*\)"$/\1/p' "$SWEEP/sweep_manifest.pbtxt")
  [[ -n $JOB ]] || fail "no job id in the $name sweep manifest"
}

# preempt_task: signal task 1 of $JOB once its log shows epoch 1 step 2 (6 steps an epoch).
preempt_task() {
  local log="$SWEEP/logs/${JOB}_1.out"
  for _ in $(seq 1 2400); do
    grep -q 'Epoch: \[1\]  \[2/6\]' "$log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q 'Epoch: \[1\]  \[2/6\]' "$log" || { cat "$log"; fail "$SWEEP task 1 never reached epoch 1"; }
  scancel --signal=TERM "${JOB}_1" || fail "scancel --signal=TERM ${JOB}_1 failed"
}

# check_preempted: task 1 stopped once, on every rank at one step, and ends equal to task 0.
check_preempted() {
  local ranks="$1" log="$SWEEP/logs/${JOB}_1.out" stops
  grep -q "task_001 exited 75 (checkpointed before the end): requeueing ${JOB}_1" "$log" \
    || { cat "$log"; fail "$SWEEP: task 1 was not requeued"; }
  stops=$(grep -o "Stopping at epoch [0-9]* step [0-9]* on signal 15" "$log")
  [[ $(wc -l <<<"$stops") == "$ranks" && $(sort -u <<<"$stops" | wc -l) == 1 ]] \
    || { cat "$log"; fail "$SWEEP: the $ranks ranks did not all stop at one step: $stops"; }
  grep -q "Resume checkpoint .*checkpoint-[12]-step[0-9]*.pth" "$log" || fail "$SWEEP: no mid-epoch resume"
  grep -q "launcher: task_001 exited 0" "$log" || { cat "$log"; fail "$SWEEP: task 1 did not finish"; }
  grep -q "restart 1\|exited 75" "$SWEEP/logs/${JOB}_0.out" && fail "$SWEEP: task 0 was requeued too"
  "$LAUNCHER" compare "$SWEEP/runs/task_000" "$SWEEP/runs/task_001" >"$TEST_TMPDIR/compare.txt" \
    || fail "$SWEEP: the requeued task differs from the unstopped one: $(cat "$TEST_TMPDIR/compare.txt")"
  grep -q "equal: 18 train rows and 3 eval rows are bitwise equal" "$TEST_TMPDIR/compare.txt" \
    || fail "$(cat "$TEST_TMPDIR/compare.txt")"
  same_final_state "$SWEEP/runs/task_000" "$SWEEP/runs/task_001" "$SWEEP"
  same_log "$SWEEP/runs/task_000" "$SWEEP/runs/task_001" "$SWEEP"
  /usr/bin/python3 "$CHECK" "$SWEEP/runs/task_001" 18 3 attempts=2 || fail "$SWEEP: requeued run dir"
  "$LAUNCHER" status "$SWEEP" >"$TEST_TMPDIR/status.txt" || fail "status $SWEEP"
  grep -q "task_001 .*FINISHED  *2 " "$TEST_TMPDIR/status.txt" \
    || { cat "$TEST_TMPDIR/status.txt"; fail "$SWEEP: status does not show 2 attempts"; }
  grep -q "task_000 .*FINISHED  *1 " "$TEST_TMPDIR/status.txt" \
    || { cat "$TEST_TMPDIR/status.txt"; fail "$SWEEP: status does not show task 0 finished"; }
}

# cross_host_peers HOSTS: while a task over node1..nodeHOSTS runs, each host's finetune has TCP
# connections to every other host's address (Gloo's pairs, the store clients of ranks > 0) and
# none over loopback. Polls each host until it has shown all its peers (a short run lives ~1 s).
cross_host_peers() {
  local hosts="$1" i j all done_hosts=" "
  rm -f ss*.txt
  for _ in $(seq 1 1200); do
    for ((i = 1; i <= hosts; i++)); do
      [[ $done_hosts == *" $i "* ]] && continue
      nsenter --net="/run/netns/cnx$ID-node$i" ss -Htnp state established >"ss$i.now" 2>&1
      cat "ss$i.now" >>"ss$i.txt"
      # The peer column, IPv4-mapped IPv6 addresses ([::ffff:A]:P) written as A:P.
      grep '"finetune"' "ss$i.now" | awk '{ print $4 }' | sed 's/^\[::ffff:\(.*\)\]:/\1:/' >"peers$i.txt"
      all=1
      for ((j = 1; j <= hosts; j++)); do
        ((i == j)) || grep -q "^$NET\.$j:" "peers$i.txt" || all=0
      done
      ((all)) && done_hosts+="$i "
    done
    (($(wc -w <<<"$done_hosts") == hosts)) && break
    sleep 0.05
  done
  (($(wc -w <<<"$done_hosts") == hosts)) || fail "finetune's connections do not reach every other" \
    "host from each of the $hosts hosts (those that did:$done_hosts): $(grep -h finetune ss*.txt | sort -u)"
  grep -h '"finetune"' ss*.txt | grep -q " 127\.\| \[::ffff:127\." && fail "a rank talks over loopback: $(cat ss*.txt)"
  for ((i = 1; i <= hosts; i++)); do
    echo "cross-host: node$i -> $(sed 's/:[0-9]*$//' "peers$i.txt" | sort -u | tr '\n' ' ')"
  done
}

# ---- 1. a 2-node sweep: across hosts, preempted, requeued, equal ------------------------------
T0=$SECONDS
preempted_sweep two 2 1
TWO_SWEEP=$SWEEP TWO_JOB=$JOB
cross_host_peers 2
preempt_task
wait_for_job "$JOB" 300
cat "$SWEEP/logs/${JOB}_1.out"
check_preempted 2
log0="$SWEEP/logs/${JOB}_0.out"
grep -q "launcher: nodes node\[1-2\]; rank 0 on node1 at MASTER_ADDR=$NET.1$" "$log0" || fail "no NodeAddr master: $(head "$log0")"
grep -q "rendezvous at $NET.1:" "$log0" || fail "ranks did not meet at node1's address"
grep -q "gloo: binding $NET.2, the address of the route to $NET.1" "$log0" || fail "rank 1's Gloo device: $(grep gloo "$log0")"
grep -q 'host: "node1"' "$SWEEP/runs/task_000/manifest.pbtxt" || fail "manifest host is not node1"
[[ $(grep -c 'attempt_node_lists: "node\[1-2\]"' "$SWEEP/runs/task_001/manifest.pbtxt") == 2 ]] \
  || fail "the requeued task's manifest lacks both attempts' node lists"
echo "2-node sweep with preemption: $((SECONDS - T0)) s"

# ---- 2. one host, 2 ranks: preempted alike -----------------------------------------------------
T0=$SECONDS
preempted_sweep one 1 2
preempt_task
wait_for_job "$JOB" 300
check_preempted 2
echo "1-node 2-rank sweep with preemption: $((SECONDS - T0)) s"

# ---- 3. 2 hosts x b == 1 process x 2b ----------------------------------------------------------
T0=$SECONDS
column() { /usr/bin/python3 -c '
import json, sys
print(" ".join(repr(json.loads(l)[sys.argv[2]]) for l in open(sys.argv[1])))' "$1" "$2"; }
same_floats() { /usr/bin/python3 -c '
import sys
a, b = [list(map(float, s.split())) for s in sys.argv[1:3]]
sys.exit(0 if len(a) == len(b) and all(abs(x - y) <= 1e-4 * max(1e-6, abs(y)) for x, y in zip(a, b)) else 1)' "$1" "$2"; }
# same_epochs WHAT DP_DIR SP_DIR KEY...: each KEY's per-epoch values in the two log.txt agree.
same_epochs() {
  local what="$1" dp_dir="$2" sp_dir="$3" key dp sp
  shift 3
  for key in "$@"; do
    dp=$(column "$dp_dir/log.txt" "$key")
    sp=$(column "$sp_dir/log.txt" "$key")
    same_floats "$dp" "$sp" || fail "$what: $key of the ranks ($dp) != 1 process with their batch ($sp)"
    echo "$what $key: ranks $dp, 1 process $sp"
  done
}
FINETUNE="$TWO_SWEEP/bin/finetune"
FT=(--data_set synthetic --nb_classes 4 --synthetic_train_size 64 --synthetic_eval_size 50
    --epochs 2 --warmup_epochs 0 --num_threads 1 --num_workers 1 --drop_path 0 --smoothing 0
    --print_freq 100 --blr 4e-4 --model convnextv2_test)
"${SRUN2[@]}" "$FINETUNE" "${FT[@]}" --batch_size 8 --output_dir "$TEST_TMPDIR/dp" \
  >dp.txt 2>&1 || fail "2-host finetune: $(tail -n 20 dp.txt)"
"$FINETUNE" "${FT[@]}" --batch_size 16 --output_dir "$TEST_TMPDIR/sp" >sp.txt 2>&1 || fail "1-process finetune: $(tail sp.txt)"
grep -q "effective batch size: 16" dp.txt || fail "2 x 8 is not an effective batch of 16"
same_epochs "finetune, 2 hosts" dp sp test_loss test_acc1 train_loss
PRE=(--data_set synthetic --synthetic_train_size 16 --input_size 64 --epochs 2 --warmup_epochs 0
     --decoder_embed_dim 32 --vis_images 2 --num_threads 1 --print_freq 1 --model convnextv2_test)
"${SRUN2[@]}" "$PRETRAIN" "${PRE[@]}" --batch_size 4 --output_dir "$TEST_TMPDIR/pdp" \
  >pdp.txt 2>&1 || fail "2-host pretrain: $(tail -n 20 pdp.txt)"
"$PRETRAIN" "${PRE[@]}" --batch_size 8 --output_dir "$TEST_TMPDIR/psp" >psp.txt 2>&1 || fail "1-process pretrain: $(tail psp.txt)"
same_epochs "pre-training, 2 hosts" pdp psp train_loss
echo "2 hosts x b vs 1 x 2b (finetune, pretrain): $((SECONDS - T0)) s"
T0=$SECONDS
FT3=("${FT[@]}" --synthetic_train_size 72)  # 3 steps of 3 x 8 per epoch, no padded shard
srun -N 3 --ntasks-per-node=1 "$FINETUNE" "${FT3[@]}" --batch_size 8 --output_dir "$TEST_TMPDIR/dp3" \
  >dp3.txt 2>&1 &
dp3_pid=$!
cross_host_peers 3
wait "$dp3_pid" || fail "3-host finetune: $(tail -n 20 dp3.txt)"
"$FINETUNE" "${FT3[@]}" --batch_size 24 --output_dir "$TEST_TMPDIR/sp3" >sp3.txt 2>&1 \
  || fail "1-process finetune, batch 24: $(tail sp3.txt)"
grep -q "effective batch size: 24" dp3.txt || fail "3 x 8 is not an effective batch of 24"
for i in 1 2 3; do
  grep -q "gloo: binding $NET.$i, the address of the route to node1" dp3.txt || fail "node$i's Gloo device: $(grep gloo dp3.txt)"
done
same_epochs "finetune, 3 hosts" dp3 sp3 test_loss test_acc1 train_loss
echo "3 hosts x b vs 1 x 3b (finetune): $((SECONDS - T0)) s"

# ---- 4. bad input ------------------------------------------------------------------------------
T0=$SECONDS
sed 's/nodes: 2 /nodes: 0 /; s/name: "two"/name: "zero"/' two.pbtxt >zero.pbtxt
"$LAUNCHER" sweep zero.pbtxt >zero.txt 2>&1 && fail "a sweep with nodes 0 was submitted"
grep -qF "slurm.nodes: 0 must be >= 1" zero.txt || fail "nodes 0 message: $(cat zero.txt)"
sed 's/nodes: 2 /nodes: 4 /; s/name: "two"/name: "four"/; s/extra_sbatch_args: "[^"]*"//' two.pbtxt >four.pbtxt
"$LAUNCHER" sweep four.pbtxt >four.txt 2>&1 && fail "a 4-node sweep was accepted by a 3-node cluster"
grep -qF "slurm.nodes: 4 but partition 'local' has 3 nodes (sinfo): lower slurm.nodes" four.txt \
  || fail "4 nodes on 3: $(cat four.txt)"
[[ ! -e sweeps/four ]] || fail "the refused 4-node sweep wrote its dir"
# A run dir with a finished run: each failure below must leave its files as they were.
sha() { (cd "$TEST_TMPDIR/sp" && sha256sum checkpoint-*.pth metrics.h5 log.txt); }
before=$(sha)
BAD=("${FT[@]}" --batch_size 8 --epochs 3 --dist_timeout 5 --output_dir "$TEST_TMPDIR/sp")
MASTER_ADDR=nosuchhost timeout 60 "${SRUN2[@]}" "$FINETUNE" "${BAD[@]}" >noname.txt 2>&1 \
  && fail "an unresolvable MASTER_ADDR trained"
grep -q "rank 1 of 2 on host node2: rank 0's host 'nosuchhost' (MASTER_ADDR.*) does not resolve here" noname.txt \
  || fail "unresolvable host: $(tail noname.txt)"
start=$SECONDS
MASTER_ADDR=$NET.77 timeout 60 "${SRUN2[@]}" "$FINETUNE" "${BAD[@]}" >unreach.txt 2>&1 \
  && fail "an unreachable MASTER_ADDR trained"
((SECONDS - start < 40)) || fail "an unreachable master took $((SECONDS - start)) s (dist_timeout 5)"
grep -q "rank 1 of 2: rendezvous at $NET.77:[0-9]* failed within 5 s (distributed.dist_timeout" unreach.txt \
  || fail "unreachable master: $(tail unreach.txt)"
# A listener holds the port on node1 (rank 0's host) before the ranks start.
port=34999  # the top of the rendezvous range; the cluster's daemons use 10000-14999
ip netns exec "cnx$ID-node1" /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(); time.sleep(120)' $port &
holder=$!
sleep 1
# As in the launcher's batch script, --kill-on-bad-exit ends rank 1 once rank 0 has failed: rank
# 1's store client, connected to the holder, which never answers, would wait for it forever.
start=$SECONDS
MASTER_PORT=$port timeout 60 "${SRUN2[@]}" --kill-on-bad-exit=1 "$FINETUNE" "${BAD[@]}" >taken.txt 2>&1 \
  && fail "ranks started on a taken port"
kill "$holder"
((SECONDS - start < 40)) || fail "a taken port took $((SECONDS - start)) s (dist_timeout 5)"
grep -q "rank 0 of 2: rendezvous at node1:$port failed within 5 s .*is the port free on rank 0's host" taken.txt \
  || fail "taken port: $(tail taken.txt)"
[[ $(sha) == "$before" ]] || fail "a failed start changed the existing run's files"
echo "bad input: $((SECONDS - T0)) s"
echo PASS
