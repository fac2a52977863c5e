#!/usr/bin/env bash
# A real one-node Slurm cluster on localhost, in a directory of its own (for tests and trying
# the launcher without a cluster). Needs slurm-wlm and munge (tools/setup.sh) and root (Slurm's
# daemons run as SlurmUser=root here).
#
#   tools/slurm/local_cluster.sh start DIR   # munged + slurmctld + slurmd; prints the export line
#   export SLURM_CONF=DIR/slurm.conf         # then sbatch/squeue/scontrol/launcher use it
#   tools/slurm/local_cluster.sh stop DIR    # cancels jobs, stops the daemons by their pid files
#
# Everything (config, state, spool, logs, munge socket) lives in DIR; ports are picked free.
set -euo pipefail
# Daemons live in /usr/sbin, which test and strict action environments leave off PATH.
export PATH="$PATH:/usr/sbin:/sbin"

die() { echo "local_cluster: $*" >&2; exit 1; }

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    if port_is_free "$p" && [[ " ${USED_PORTS:-} " != *" $p "* ]]; then
      USED_PORTS="${USED_PORTS:-} $p"
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

stop_pidfile() {  # stop_pidfile FILE NAME: TERM the pid in FILE, wait, then KILL
  local file="$1" name="$2" pid
  [[ -s $file ]] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "local_cluster: $name (pid $pid) did not stop on TERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$file"
}

start() {
  local dir="$1"
  for tool in munged slurmctld slurmd sbatch squeue scontrol; do
    command -v "$tool" >/dev/null || die "$tool is not installed (run tools/setup.sh: slurm-wlm, munge)"
  done
  [[ $(id -u) == 0 ]] || die "must run as root (SlurmUser=root and munged's key)"
  [[ -r /etc/munge/munge.key ]] || die "/etc/munge/munge.key is missing (reinstall munge)"
  mkdir -p "$dir"/{state,spool,munge}
  dir=$(cd "$dir" && pwd)
  chmod 0700 "$dir/munge"
  local host cpus mem_mib ctld_port slurmd_port
  host=$(hostname)
  cpus=$(nproc)
  mem_mib=$(awk '/MemTotal/ { print int($2 / 1024 * 0.8) }' /proc/meminfo)
  ctld_port=$(free_port)
  slurmd_port=$(free_port)

  munged --force --socket="$dir/munge/munge.sock" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
    || die "munged did not start: $(tail -5 "$dir/munge/munged.log" 2>/dev/null)"

  cat >"$dir/slurm.conf" <<CONF
# Written by tools/slurm/local_cluster.sh: a one-node cluster on $host.
ClusterName=local$ctld_port
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s;
# Slurm refuses values below 5).
AuthInfo=socket=$dir/munge/munge.sock,cred_expire=5
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerParameters=sched_interval=2
MaxArraySize=1001
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -f "$SLURM_CONF" || die "slurmctld did not start: $(tail -5 "$dir/slurmctld.log" 2>/dev/null)"
  slurmd -f "$SLURM_CONF" || die "slurmd did not start: $(tail -5 "$dir/slurmd.log" 2>/dev/null)"
  local state=""
  for _ in $(seq 1 60); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    [[ $state == idle* ]] && break
    sleep 1
  done
  [[ $state == idle* ]] || die "node $host is '$state' after 60 s; see $dir/slurmctld.log and $dir/slurmd.log"
  echo "export SLURM_CONF=$SLURM_CONF"
}

stop() {
  local dir="$1"
  [[ -d $dir ]] || die "no cluster dir $dir"
  if [[ -f $dir/slurm.conf && -s $dir/slurmctld.pid ]]; then
    SLURM_CONF="$dir/slurm.conf" scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  fi
  stop_pidfile "$dir/slurmd.pid" slurmd
  stop_pidfile "$dir/slurmctld.pid" slurmctld
  stop_pidfile "$dir/munge/munged.pid" munged
}

case "${1:-}" in
  start) [[ $# == 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
  stop) [[ $# == 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
  *) die "usage: $0 start|stop DIR" ;;
esac
