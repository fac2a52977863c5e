# Sourced by the Slurm sh_tests: starts a real Slurm cluster (tools/slurm/local_cluster.sh) in a
# short /tmp dir, exports SLURM_CONF, and stops it when the test exits, also when it is killed
# (TERM from Bazel's timeout; a SIGKILLed test's cluster is removed by the next start, which
# finds its --owner gone).
#   source slurm_test_lib.sh; setup_slurm_test "$@"   # args: launcher, local_cluster.sh, check_run_dir.py
#   SLURM_TEST_NODES=2 before setup_slurm_test: that many hosts (network namespaces);
#   SLURM_TEST_SLURMD_TIMEOUT=S: a silent host is DOWN after S s (Slurm's default: 300).
# Sets LAUNCHER, CLUSTER, CHECK and CLUSTER_DIR, defines fail(), and leaves the test in $TEST_TMPDIR.
#   same_final_state REF_DIR RUN_DIR WHAT: needs DIGEST (//tests/checkpoint:tensor_digest).
#   same_log REF_DIR RUN_DIR WHAT: log.txt of both runs without timing keys.

fail() { echo "FAIL: $*" >&2; exit 1; }

setup_slurm_test() {
  LAUNCHER=$(realpath "$1")
  CLUSTER=$(realpath "$2")
  CHECK=$(realpath "$3")
  start_local_cluster "$CLUSTER" "${SLURM_TEST_NODES:-1}"
  cd "$TEST_TMPDIR" || fail "no TEST_TMPDIR"
}

start_local_cluster() {
  CLUSTER_SCRIPT="$1"
  local nodes="${2:-1}"
  # Unix socket paths must stay under 108 bytes: the cluster lives in a short /tmp dir.
  CLUSTER_DIR=$(mktemp -d /tmp/cnx-slurm.XXXXXX) || fail "cannot make a cluster dir in /tmp"
  trap stop_local_cluster EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  "$CLUSTER_SCRIPT" start "$CLUSTER_DIR" --nodes "$nodes" --owner $$ \
    --slurmd-timeout "${SLURM_TEST_SLURMD_TIMEOUT:-300}" >"$TEST_TMPDIR/cluster.out" 2>&1 || {
    cat "$TEST_TMPDIR/cluster.out" "$CLUSTER_DIR"/*.log 2>/dev/null
    fail "the local Slurm cluster ($nodes nodes) did not start (see above)"
  }
  export SLURM_CONF="$CLUSTER_DIR/slurm.conf"
}

stop_local_cluster() {
  "$CLUSTER_SCRIPT" stop "$CLUSTER_DIR" || echo "warning: stopping the cluster failed" >&2
  rm -rf "$CLUSTER_DIR"
}

# wait_for_job JOB SECONDS: until no task of JOB is queued or running; fails after SECONDS.
wait_for_job() {
  local job="$1" seconds="$2"
  for _ in $(seq 1 "$seconds"); do
    squeue -h -j "$job" >"$TEST_TMPDIR/queue.txt" 2>&1 || true
    [[ -s $TEST_TMPDIR/queue.txt ]] || return 0
    sleep 1
  done
  fail "job $job still queued after $seconds s: $(cat "$TEST_TMPDIR/queue.txt")"
}

# same_final_state REF_DIR RUN_DIR WHAT: the two runs' last epoch checkpoints hold bitwise equal
# model, optimizer and generator tensors ($DIGEST: tests/checkpoint:tensor_digest).
same_final_state() {
  local ref="$1" run="$2" what="$3" last
  last=$(cd "$ref" && ls checkpoint-*[0-9].pth | sort -t- -k2 -n | tail -n 1)
  [[ -n $last ]] || fail "$what: no epoch checkpoint in $ref"
  "$DIGEST" "$ref/$last" model. optimizer. rng. >"$TEST_TMPDIR/digest.ref" || fail "$what: digest of $ref/$last"
  "$DIGEST" "$run/$last" model. optimizer. rng. >"$TEST_TMPDIR/digest.run" || fail "$what: digest of $run/$last"
  (($(wc -l <"$TEST_TMPDIR/digest.run") > 100)) || fail "$what: $last holds too few tensors"
  cmp -s "$TEST_TMPDIR/digest.ref" "$TEST_TMPDIR/digest.run" \
    || fail "$what: $last differs from the unstopped run's: $(diff "$TEST_TMPDIR/digest.ref" "$TEST_TMPDIR/digest.run" | head -n 4)"
}

# same_log REF_DIR RUN_DIR WHAT: both runs' log.txt, without the timing keys the tasks declare
# (`launcher log_without_timing`), are the same, row for row.
same_log() {
  local ref="$1" run="$2" what="$3"
  "$LAUNCHER" log_without_timing "$ref/log.txt" >"$TEST_TMPDIR/log.ref" || fail "$what: log_without_timing $ref/log.txt"
  "$LAUNCHER" log_without_timing "$run/log.txt" >"$TEST_TMPDIR/log.run" || fail "$what: log_without_timing $run/log.txt"
  grep -q '"test_acc1"' "$TEST_TMPDIR/log.ref" || fail "$what: no epoch rows in $ref/log.txt"
  cmp -s "$TEST_TMPDIR/log.ref" "$TEST_TMPDIR/log.run" \
    || fail "$what: log.txt differs from the unstopped run's: $(diff "$TEST_TMPDIR/log.ref" "$TEST_TMPDIR/log.run" | head -n 4)"
}
