#!/usr/bin/env bash
# dist_bench across hosts, on this machine: starts a local Slurm cluster of N hosts (network
# namespaces on a bridge, tools/slurm/local_cluster.sh), runs `dist_bench --external` as one srun
# step with one rank per host, and stops the cluster (also when interrupted). dist_bench prints
# the Gloo all-reduce bandwidth and the 1 -> N step scaling across the hosts, then, from rank 0's
# host, the same over loopback with N processes of its own: one run, both sets of figures.
#
#   bazel build //tools/bench:dist_bench
#   tools/bench/dist_bench_hosts.sh [--nodes N] [DIST_BENCH_FLAGS...]   # e.g. --batch=32 --steps=5
#
# DIST_BENCH=PATH picks another binary (default bazel-bin/tools/bench/dist_bench). Needs root
# (network namespaces, Slurm's daemons). All hosts are one kernel sharing this machine's cores:
# "across hosts" is a veth pair and a Linux bridge, so this compares the bridge against loopback,
# not a real network.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=${DIST_BENCH:-$ROOT/bazel-bin/tools/bench/dist_bench}
CLUSTER="$ROOT/tools/slurm/local_cluster.sh"
die() { echo "dist_bench_hosts: $*" >&2; exit 1; }

nodes=2
if [[ ${1:-} == --nodes ]]; then
  nodes="${2:-}"
  shift 2 || die "--nodes needs a number"
fi
[[ $nodes =~ ^[0-9]+$ ]] && ((nodes >= 2)) || die "--nodes '$nodes': want 2 or more hosts"
[[ -x $BENCH ]] || die "$BENCH is not built: bazel build //tools/bench:dist_bench (or set DIST_BENCH)"
BENCH=$(realpath "$BENCH")

DIR=$(mktemp -d /tmp/cnx-bench.XXXXXX)
cleanup() {
  "$CLUSTER" stop "$DIR" >/dev/null 2>&1 || echo "dist_bench_hosts: stopping the cluster in $DIR failed" >&2
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
"$CLUSTER" start "$DIR" --nodes "$nodes" --owner $$ >"$DIR/start.out" 2>&1 \
  || { cat "$DIR/start.out" >&2; die "the $nodes-host cluster did not start"; }
export SLURM_CONF="$DIR/slurm.conf"
echo "dist_bench across $nodes hosts of a local cluster, $(date -u +%FT%TZ), $(nproc) cores shared by all hosts"
echo "command: srun -N $nodes --ntasks-per-node=1 dist_bench --external $*"
srun -N "$nodes" --ntasks-per-node=1 "$BENCH" --external "$@"
