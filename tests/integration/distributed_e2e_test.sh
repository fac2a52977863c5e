#!/usr/bin/env bash
# Data-parallel runs of the real binaries over Gloo on localhost, started by hand with the
# torchrun variables: 2 ranks x batch b train like 1 rank x batch 2b (with and without
# update_freq), evaluation gives identical results on 1, 3 and 7 processes, only rank 0 writes,
# a killed rank makes the other fail with a clear error instead of hanging, and pre-training
# on 2 ranks x b trains like 1 rank x 2b.
set -uo pipefail
FINETUNE="$1"
PRETRAIN="$2"
T="$TEST_TMPDIR"
fail() { echo "FAIL: $*" >&2; exit 1; }
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The test-only tiny model (models/variants.h): what is compared does not depend on the model.
COMMON=(--data_set synthetic --nb_classes 4 --synthetic_train_size 64 --synthetic_eval_size 50
        --epochs 2 --warmup_epochs 0 --num_threads 1 --num_workers 1 --drop_path 0 --smoothing 0
        --print_freq 100 --blr 4e-3 --model convnextv2_test)

# run_ranks BINARY WORLD NAME ARGS...: starts WORLD ranks, waits, fails unless all exit 0.
run_ranks() {
  local bin=$1 world=$2 name=$3
  shift 3
  local port pids=() r
  port=$(free_port)
  for ((r = 0; r < world; r++)); do
    RANK=$r WORLD_SIZE=$world LOCAL_RANK=$r LOCAL_WORLD_SIZE=$world MASTER_ADDR=127.0.0.1 \
      MASTER_PORT=$port "$bin" "$@" >"$T/$name.rank$r.log" 2>&1 &
    pids+=($!)
  done
  for ((r = 0; r < world; r++)); do
    wait "${pids[$r]}" || { tail -n 20 "$T/$name.rank$r.log"; fail "$name: rank $r exited $?"; }
  done
}

# Values of "key" per line of a log.txt.
column() { /usr/bin/python3 -c '
import json, sys
print(" ".join(repr(json.loads(l)[sys.argv[2]]) for l in open(sys.argv[1])))' "$1" "$2"; }

# same_floats "a b" "c d": equal within a relative 1e-4.
same_floats() { /usr/bin/python3 -c '
import sys
a, b = [list(map(float, s.split())) for s in sys.argv[1:3]]
sys.exit(0 if len(a) == len(b) and all(abs(x - y) <= 1e-4 * max(1e-6, abs(y)) for x, y in zip(a, b)) else 1)' "$1" "$2"; }

# ---- 2 ranks x b == 1 rank x 2b, without and with accumulation ----------------------------------
for uf in 1 2; do
  b=$((8 / uf))
  EMA=(--model_ema true --model_ema_eval true --model_ema_decay 0.9)
  run_ranks "$FINETUNE" 2 "dp$uf" "${COMMON[@]}" "${EMA[@]}" --batch_size $b --update_freq $uf --output_dir "$T/dp$uf"
  run_ranks "$FINETUNE" 1 "sp$uf" "${COMMON[@]}" "${EMA[@]}" --batch_size $((2 * b)) --update_freq $uf --output_dir "$T/sp$uf"
  grep -q "distributed: rank 1 of 2" "$T/dp$uf.rank1.log" || fail "rank 1 did not join: $(tail -n 5 "$T/dp$uf.rank1.log")"
  grep -q "process group ready: gloo, 2 ranks" "$T/dp$uf.rank0.log" || fail "no gloo group"
  for key in test_loss test_loss_ema train_grad_norm train_loss; do
    dp=$(column "$T/dp$uf/log.txt" $key)
    sp=$(column "$T/sp$uf/log.txt" $key)
    same_floats "$dp" "$sp" || fail "update_freq $uf: $key of 2 ranks ($dp) != 1 rank with the double batch ($sp)"
  done
  # Rank 0 wrote one record; rank 1 wrote nothing of its own.
  [[ -f $T/dp$uf/manifest.pbtxt && -f $T/dp$uf/metrics.h5 && -f $T/dp$uf/checkpoint-1.pth ]] \
    || fail "rank 0 outputs missing: $(ls "$T/dp$uf")"
  [[ $(wc -l <"$T/dp$uf/log.txt") == 2 ]] || fail "log.txt has $(wc -l <"$T/dp$uf/log.txt") lines, not 2"
  grep -q "img/s" "$T/dp$uf.rank1.log" || fail "rank 1 did not train"
done
grep -q "effective batch size: 16" "$T/dp1.rank0.log" || fail "effective batch size of 2 x 8 is not 16"
# The 2-rank run resumes on 1 rank with the same global batch (same steps per epoch).
run_ranks "$FINETUNE" 1 resume1 "${COMMON[@]}" "${EMA[@]}" --batch_size 16 --epochs 3 --output_dir "$T/dp1"
grep -q "Resume checkpoint .*checkpoint-1.pth: epoch 2" "$T/resume1.rank0.log" || fail "no resume: $(grep -i resum "$T/resume1.rank0.log")"
[[ $(wc -l <"$T/dp1/log.txt") == 3 ]] || fail "resumed on 1 rank: log.txt has $(wc -l <"$T/dp1/log.txt") lines"

# ---- evaluation on 1, 3 and 7 processes: identical (padding not counted) ------------------------
# A barely trained model so that accuracy is neither 0 nor 100%.
run_ranks "$FINETUNE" 1 weak "${COMMON[@]}" --epochs 1 --blr 2e-5 --batch_size 16 --output_dir "$T/weak"
results=()
for world in 1 3 7; do
  run_ranks "$FINETUNE" $world "eval$world" "${COMMON[@]}" --eval true --resume "$T/weak/checkpoint-0.pth" \
    --batch_size 4
  line=$(grep -o "Accuracy of the network on .*" "$T/eval$world.rank0.log")
  loss=$(grep -o "\* Acc@1 .*" "$T/eval$world.rank0.log")
  [[ $line == "Accuracy of the network on 50 test images: "* ]] || fail "$world processes: '$line'"
  results+=("$line $loss")
done
echo "evaluation: ${results[0]}"
[[ ${results[0]} != *" 100.00000%"* && ${results[0]} != *" 0.00000%"* ]] || fail "degenerate accuracy: ${results[0]}"
[[ ${results[1]} == "${results[0]}" && ${results[2]} == "${results[0]}" ]] \
  || fail "evaluation differs: 1: ${results[0]} / 3: ${results[1]} / 7: ${results[2]}"
# Without dist_eval every rank evaluates everything: the same numbers again.
run_ranks "$FINETUNE" 3 evalnd "${COMMON[@]}" --eval true --resume "$T/weak/checkpoint-0.pth" \
  --batch_size 4 --dist_eval false
[[ "$(grep -o "Accuracy of the network on .*" "$T/evalnd.rank2.log") $(grep -o "\* Acc@1 .*" "$T/evalnd.rank2.log")" == "${results[0]}" ]] \
  || fail "dist_eval false differs"

# ---- a rank that dies: the other fails within the timeout, naming what happened ----------------
port=$(free_port)
# atto (the last --model wins): its steps leave time to kill rank 1 long before the run ends.
LONG=("${COMMON[@]}" --synthetic_train_size 2048 --batch_size 8 --print_freq 1 --dist_timeout 20
      --output_dir "$T/die" --model convnextv2_atto)
RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$FINETUNE" "${LONG[@]}" >"$T/die0.log" 2>&1 &
p0=$!
RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$FINETUNE" "${LONG[@]}" >"$T/die1.log" 2>&1 &
p1=$!
for _ in $(seq 600); do
  grep -q 'Epoch: \[0\]  \[  3/128\]' "$T/die1.log" 2>/dev/null && break
  sleep 0.2
done
grep -q 'Epoch: \[0\]  \[  3/128\]' "$T/die1.log" || { kill -9 $p0 $p1; fail "rank 1 did not start training: $(tail -n 5 "$T/die1.log")"; }
kill -9 $p1
start=$SECONDS
wait $p0
rc=$?
[[ $rc == 1 ]] || fail "rank 0 exited $rc after rank 1 died (expected 1)"
((SECONDS - start < 60)) || fail "rank 0 took $((SECONDS - start)) s to notice"
grep -q "rank 0: all-reduce failed" "$T/die0.log" || fail "no clear error: $(tail -n 3 "$T/die0.log")"
grep -q "exit_status: 1" "$T/die/manifest.pbtxt" || fail "the manifest does not record the failure"

# ---- a rank that never comes: rendezvous error within dist_timeout ------------------------------
RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$(free_port) "$FINETUNE" "${COMMON[@]}" \
  --dist_timeout 3 --output_dir "$T/alone" >"$T/alone.log" 2>&1 && fail "a lone rank 0 of 2 succeeded"
grep -q "rank 0 of 2: rendezvous at 127.0.0.1:.* failed within 3 s" "$T/alone.log" \
  || fail "rendezvous message: $(tail -n 3 "$T/alone.log")"

# ---- pre-training on 2 ranks: as 1 rank with the double batch (masks keyed by sample) -----------
PRE=(--data_set synthetic --synthetic_train_size 16 --input_size 64 --epochs 2 --warmup_epochs 0
     --decoder_embed_dim 32 --vis_images 2 --num_threads 1 --print_freq 1 --model convnextv2_test)
run_ranks "$PRETRAIN" 2 pre "${PRE[@]}" --batch_size 4 --output_dir "$T/pre"
run_ranks "$PRETRAIN" 1 pre1 "${PRE[@]}" --batch_size 8 --output_dir "$T/pre1"
grep -q "effective batch size: 8" "$T/pre.rank0.log" || fail "pretrain effective batch size"
dp=$(column "$T/pre/log.txt" train_loss)
sp=$(column "$T/pre1/log.txt" train_loss)
same_floats "$dp" "$sp" || fail "pre-training: train_loss of 2 ranks ($dp) != 1 rank with the double batch ($sp)"
[[ -f $T/pre/metrics.h5 && -f $T/pre/checkpoint-1.pth ]] || fail "pretrain outputs: $(ls "$T/pre")"
[[ $(ls "$T/pre" | grep -c '\.png$') -ge 1 ]] || fail "no reconstruction PNG"
echo "PASS"
