#!/usr/bin/env bash
# A real Slurm cluster on this machine, in a directory of its own (for tests and trying the
# launcher without a cluster): one node, or several hosts made of network namespaces. Needs
# slurm-wlm and munge, and for several nodes iproute2 and util-linux (tools/setup.sh), and root
# (Slurm's daemons run as SlurmUser=root here; namespaces need CAP_SYS_ADMIN).
#
#   tools/slurm/local_cluster.sh start DIR [--nodes N] [--owner PID] [--slurmd-timeout S]
#   export SLURM_CONF=DIR/slurm.conf   # then sbatch/squeue/scontrol/launcher use it
#   tools/slurm/local_cluster.sh stop DIR   # cancels jobs, stops the daemons, removes the hosts
#   tools/slurm/local_cluster.sh cut DIR I       # host i's link down, everything on it alive
#   tools/slurm/local_cluster.sh power-off DIR I # link down, then SIGKILL all on host i (slurmd too)
#   tools/slurm/local_cluster.sh power-on DIR I  # link up; restart host i's slurmd if it is gone
#
# --nodes 1 (the default): slurmd on this host, named $(hostname), at 127.0.0.1.
# --nodes N >= 2: hosts node1..nodeN. Host i is a network namespace cnx<ID>-node<i> with the
# address 10.213.<ID>.<i> on a bridge cnx<ID>br (a veth pair cnx<ID>h<i> / eth0); the root
# namespace is 10.213.<ID>.254 on the bridge (slurmctld, munged, sbatch, squeue). Each host's
# slurmd runs in its own UTS namespace with the hostname node<i>, so Gloo, log lines and
# manifests name their host; /etc/netns/<namespace>/hosts names all nodes inside the hosts
# (never the machine's /etc/hosts). Spool, pid and log files are per node (slurmd-node<i>.*).
# The namespaces separate the network and the hostname only: DIR and every output folder are
# the same files on every host, as shared storage is on a real cluster.
#
# Several clusters run at once: ID (1..250) is claimed in /run/convnextv2-clusters/ID, and the
# daemon ports are picked free in 10000-14999, below the rendezvous ports of training jobs
# (dist/env.cc PortForJob: 15000-34999) and the kernel's ephemeral ports (32768-60999).
# `start` first removes what a multi-node cluster left behind when its stop never ran: one
# whose --owner process (a test's shell) has exited, or whose DIR is gone.
# --slurmd-timeout S: a host whose slurmd is silent for S seconds is DOWN and its jobs are
# requeued (NODE_FAIL; the launcher's jobs are --requeue); Slurm's default is 300. `stop` removes
# everything by pid files and by name, also after a failed start (start cleans up after itself).
set -euo pipefail
# Daemons live in /usr/sbin, which test and strict action environments leave off PATH.
export PATH="$PATH:/usr/sbin:/sbin"

REGISTRY=/run/convnextv2-clusters
NET_PREFIX=10.213
STARTING_DIR=""  # set while start runs: any exit then undoes the half-made cluster

die() {
  echo "local_cluster: $*" >&2
  exit 1
}

undo_failed_start() {
  local rc=$? d="$STARTING_DIR"
  [[ -n $d ]] || return 0
  STARTING_DIR=""
  echo "local_cluster: start failed; removing what it made in $d" >&2
  stop "$d" >/dev/null 2>&1 || true
  exit "$rc"
}
trap undo_failed_start EXIT

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % 5000))
    if port_is_free "$p" && [[ " ${USED_PORTS:-} " != *" $p "* ]]; then
      USED_PORTS="${USED_PORTS:-} $p"
      echo "$p"
      return 0
    fi
  done
  die "no free port found in 10000-14999"
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

# ---- the hosts: namespaces, veth pairs, a bridge ------------------------------------------------

# Start time of a process (clock ticks since boot), so that a reused pid is not taken for it.
proc_start() { awk '{ print $22 }' "/proc/$1/stat" 2>/dev/null || true; }

# teardown_net ID: kills what runs in the cluster's namespaces, deletes them, their hosts
# files, the veth pairs and the bridge, and frees the ID. Works from names alone.
teardown_net() {
  local id="$1" ns pids link
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^cnx${id}-node[0-9]+$" || true); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [[ -n $pids ]]; then
      kill -TERM $pids 2>/dev/null || true
      for _ in $(seq 1 25); do
        [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break
        sleep 0.2
      done
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      if [[ -n $pids ]]; then kill -KILL $pids 2>/dev/null || true; fi
    fi
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
                grep -E "^cnx${id}(br|h[0-9]+)$" || true); do
    ip link del "$link" 2>/dev/null || true
  done
  rm -f "$REGISTRY/$id"
}

# A registered cluster is stale when its owner process is gone or its DIR is; namespaces and
# links named like ours with no registration at all are left over too (claims come first).
remove_stale() {
  mkdir -p "$REGISTRY"
  local file id owner start dir name
  for file in "$REGISTRY"/*; do
    [[ -f $file ]] || continue
    id=${file##*/}
    read -r owner start dir <"$file" || continue
    if [[ -d $dir ]] && kill -0 "$owner" 2>/dev/null && [[ $(proc_start "$owner") == "$start" ]]; then
      continue
    fi
    echo "local_cluster: removing cluster $id (DIR $dir) left behind by a stop that never ran" >&2
    if [[ -d $dir ]]; then stop "$dir" >/dev/null 2>&1 || true; fi
    teardown_net "$id"
  done
  for name in $( (ip netns list 2>/dev/null | awk '{ print $1 }'
                  ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }') |
                sed -nE 's/^cnx([0-9]+)(-node[0-9]+|br|h[0-9]+)$/\1/p' | sort -u); do
    [[ -f $REGISTRY/$name ]] || teardown_net "$name"
  done
}

# claim_id DIR OWNER: a free ID (no registration, no bridge, no address in its subnet).
claim_id() {
  local dir="$1" owner="$2" id
  for _ in $(seq 1 500); do
    id=$((1 + RANDOM % 250))
    ip link show "cnx${id}br" >/dev/null 2>&1 && continue
    ip -o addr show | grep -q " $NET_PREFIX\.$id\." && continue
    if (set -C; echo "$owner $(proc_start "$owner") $dir" >"$REGISTRY/$id") 2>/dev/null; then
      echo "$id"
      return 0
    fi
  done
  die "no free cluster id (subnet $NET_PREFIX.1-250.0/24) is left; stop other clusters"
}

# make_hosts ID N: the bridge with the root namespace's address, and N hosts on it.
make_hosts() {
  local id="$1" n="$2" br="cnx${1}br" i ns
  ip link add "$br" type bridge || die "cannot create bridge $br (ip link add)"
  ip addr add "$NET_PREFIX.$id.254/24" dev "$br"
  ip link set "$br" up
  for ((i = 1; i <= n; i++)); do
    ns="cnx${id}-node$i"
    ip netns add "$ns" || die "cannot create network namespace $ns (ip netns add)"
    ip link add "cnx${id}h$i" type veth peer name eth0 netns "$ns" || die "cannot create veth cnx${id}h$i"
    ip link set "cnx${id}h$i" master "$br" up
    ip -n "$ns" addr add "$NET_PREFIX.$id.$i/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    mkdir -p "/etc/netns/$ns"
    {
      echo "127.0.0.1 localhost"
      echo "$NET_PREFIX.$id.254 $(hostname)"
      for ((j = 1; j <= n; j++)); do echo "$NET_PREFIX.$id.$j node$j"; done
    } >"/etc/netns/$ns/hosts"
  done
}

# reach NS ADDR PORT: a TCP connection from namespace NS (the root one for "-") within 3 s.
reach() {
  local prefix=()
  [[ $1 != - ]] && prefix=(ip netns exec "$1")
  "${prefix[@]}" timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$2" "$3" 2>/dev/null
}

# check_links ID N SLURMD_PORT CTLD_PORT: every host reaches every other host's slurmd and
# slurmctld over the bridge; a firewall that drops bridged traffic fails here, clearly.
check_links() {
  local id="$1" n="$2" sport="$3" cport="$4" i j up
  for ((i = 1; i <= n; i++)); do
    up=0
    for _ in $(seq 1 40); do
      if reach - "$NET_PREFIX.$id.$i" "$sport"; then up=1; break; fi
      sleep 0.25
    done
    ((up)) || die "slurmd on node$i ($NET_PREFIX.$id.$i:$sport) does not answer from the root namespace; see $STARTING_DIR/slurmd-node$i.log"
  done
  for ((i = 1; i <= n; i++)); do
    reach "cnx${id}-node$i" "$NET_PREFIX.$id.254" "$cport" || die "host node$i cannot reach" \
      "slurmctld at $NET_PREFIX.$id.254:$cport over bridge cnx${id}br: is traffic to the bridge dropped by a firewall?"
    for ((j = 1; j <= n; j++)); do
      ((i == j)) && continue
      reach "cnx${id}-node$i" "$NET_PREFIX.$id.$j" "$sport" || die "host node$i cannot reach node$j" \
        "($NET_PREFIX.$id.$j:$sport) over bridge cnx${id}br: bridged traffic is dropped (with" \
        "net.bridge.bridge-nf-call-iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo '?')" \
        "a firewall's FORWARD rules apply to it; allow it, or set that sysctl to 0)"
    done
  done
}

# ---- the cluster ------------------------------------------------------------------------------

write_conf() {  # write_conf DIR N ID CTLD_PORT SLURMD_PORT SLURMD_TIMEOUT
  local dir="$1" n="$2" id="$3" ctld_port="$4" slurmd_port="$5" slurmd_timeout="$6" host cpus mem_mib i
  host=$(hostname)
  cpus=$(nproc)
  mem_mib=$(awk -v n="$n" '/MemTotal/ { print int($2 / 1024 * 0.8 / n) }' /proc/meminfo)
  local ctld_addr=127.0.0.1 node_suffix="" nodes="$host"
  if ((n > 1)); then
    ctld_addr="$NET_PREFIX.$id.254"
    node_suffix="-%n"
    nodes="node[1-$n]"
  fi
  cat >"$dir/slurm.conf" <<CONF
# Written by tools/slurm/local_cluster.sh: a $n-node cluster on $host.
ClusterName=local$ctld_port
SlurmctldHost=$host($ctld_addr)
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
SlurmdSpoolDir=$dir/spool$node_suffix
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd$node_suffix.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd$node_suffix.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerParameters=sched_interval=2
MaxArraySize=1001
SlurmdTimeout=$slurmd_timeout
CONF
  if ((n == 1)); then
    echo "NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN" >>"$dir/slurm.conf"
  else
    for ((i = 1; i <= n; i++)); do
      echo "NodeName=node$i NodeAddr=$NET_PREFIX.$id.$i CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN" >>"$dir/slurm.conf"
    done
  fi
  echo "PartitionName=local Nodes=$nodes Default=YES MaxTime=INFINITE State=UP" >>"$dir/slurm.conf"
}

# start_slurmd N ID: one slurmd per host (in its namespace, with its own hostname), or one here.
start_slurmd() {
  local n="$1" id="$2" i
  if ((n == 1)); then
    slurmd -f "$SLURM_CONF" || die "slurmd did not start: $(tail -5 "$STARTING_DIR/slurmd.log" 2>/dev/null)"
    return 0
  fi
  for ((i = 1; i <= n; i++)); do start_slurmd_on "$id" "$i"; done
}

start_slurmd_on() {  # start_slurmd_on ID I: host i's slurmd
  local id="$1" i="$2"
  # Not `ip netns exec`: it remounts /sys, which hides the cgroup mounts slurmd needs. The
  # private mount namespace gives the host its own /etc/hosts, the UTS namespace its hostname.
  nsenter --net="/run/netns/cnx${id}-node$i" unshare --mount --uts sh -c \
    'mount --bind "$3" /etc/hosts && hostname "$1" && exec slurmd -f "$2" -N "$1"' \
    sh "node$i" "$SLURM_CONF" "/etc/netns/cnx${id}-node$i/hosts" \
    || die "slurmd on node$i did not start: $(tail -5 "$(dirname "$SLURM_CONF")/slurmd-node$i.log" 2>/dev/null)"
}

wait_idle() {  # wait_idle N: every node idle within 60 s
  local n="$1" idle=0
  for _ in $(seq 1 60); do
    idle=$(sinfo -h -N -o "%N %T" 2>/dev/null | grep -c " idle" || true)
    ((idle == n)) && return 0
    sleep 1
  done
  die "$idle of $n nodes are idle after 60 s: $(sinfo -h -N -o '%N %T' 2>&1 | tr '\n' ' ');" \
    "see $STARTING_DIR/slurmctld.log and $STARTING_DIR/slurmd*.log"
}

start() {
  local dir="$1" n="$2" owner="$3" slurmd_timeout="$4"
  for tool in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
    command -v "$tool" >/dev/null || die "$tool is not installed (run tools/setup.sh: slurm-wlm, munge)"
  done
  local why="SlurmUser=root and munged's key"
  ((n > 1)) && why+="; network namespaces for --nodes $n"
  [[ $(id -u) == 0 ]] || die "must run as root ($why)"
  [[ -r /etc/munge/munge.key ]] || die "/etc/munge/munge.key is missing (reinstall munge)"
  if ((n > 1)); then
    command -v ip >/dev/null || die "--nodes $n needs ip from iproute2 (run tools/setup.sh)"
    command -v unshare >/dev/null && command -v nsenter >/dev/null \
      || die "--nodes $n needs unshare and nsenter from util-linux (run tools/setup.sh)"
    ip netns list >/dev/null 2>&1 || die "--nodes $n: this kernel or container cannot make network namespaces (ip netns list failed)"
  fi
  mkdir -p "$dir"/{state,munge}
  dir=$(cd "$dir" && pwd)
  if [[ -s $dir/slurmctld.pid ]] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    die "$dir already holds a running cluster; stop it first or use another DIR"
  fi
  chmod 0700 "$dir/munge"
  local id=0
  if ((n > 1)); then
    remove_stale
    [[ -n $owner ]] || owner=$$
    id=$(claim_id "$dir" "$owner")
    STARTING_DIR="$dir"
    echo "ID=$id NODES=$n" >"$dir/net.env"
    make_hosts "$id" "$n"
  fi
  STARTING_DIR="$dir"
  ((n > 1)) || mkdir -p "$dir/spool"
  local ctld_port slurmd_port
  ctld_port=$(free_port)
  slurmd_port=$(free_port)

  munged --force --socket="$dir/munge/munge.sock" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
    || die "munged did not start: $(tail -5 "$dir/munge/munged.log" 2>/dev/null)"
  write_conf "$dir" "$n" "$id" "$ctld_port" "$slurmd_port" "$slurmd_timeout"
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -f "$SLURM_CONF" || die "slurmctld did not start: $(tail -5 "$dir/slurmctld.log" 2>/dev/null)"
  start_slurmd "$n" "$id"
  if ((n > 1)); then check_links "$id" "$n" "$slurmd_port" "$ctld_port"; fi
  wait_idle "$n"
  if ((n > 1)) && [[ $owner == "$$" ]]; then
    # Started by hand: the cluster lives as long as its slurmctld.
    owner=$(cat "$dir/slurmctld.pid")
    echo "$owner $(proc_start "$owner") $dir" >"$REGISTRY/$id"
  fi
  STARTING_DIR=""
  echo "export SLURM_CONF=$SLURM_CONF"
}

stop() {
  local dir="$1" f
  [[ -d $dir ]] || die "no cluster dir $dir"
  if [[ -f $dir/slurm.conf && -s $dir/slurmctld.pid ]]; then
    SLURM_CONF="$dir/slurm.conf" timeout 20 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  fi
  for f in "$dir"/slurmd*.pid; do
    if [[ -e $f ]]; then stop_pidfile "$f" "slurmd ${f##*/}"; fi
  done
  stop_pidfile "$dir/slurmctld.pid" slurmctld
  stop_pidfile "$dir/munge/munged.pid" munged
  if [[ -f $dir/net.env ]]; then
    local ID="" NODES=""
    # shellcheck disable=SC1091
    source "$dir/net.env"
    [[ -n $ID ]] && teardown_net "$ID"
    rm -f "$dir/net.env"
  fi
  return 0
}

# node_op OP DIR I: the failures of host i the tests inject (no sockets are closed by them).
node_op() {
  local op="$1" dir="$2" i="$3" ID="" NODES=""
  [[ -f $dir/net.env ]] || die "$dir is not a multi-node cluster (no net.env)"
  # shellcheck disable=SC1091
  source "$dir/net.env"
  [[ $i =~ ^[0-9]+$ ]] && ((i >= 1 && i <= NODES)) || die "node '$i': want 1..$NODES"
  local ns="cnx${ID}-node$i" pids
  export SLURM_CONF="$dir/slurm.conf"
  case "$op" in
    cut) ip link set "cnx${ID}h$i" down ;;
    power-off)
      ip link set "cnx${ID}h$i" down
      pids=$(ip netns pids "$ns")
      if [[ -n $pids ]]; then kill -KILL $pids 2>/dev/null || true; fi
      rm -f "$dir/slurmd-node$i.pid"
      ;;
    power-on)
      ip link set "cnx${ID}h$i" up
      if ! [[ -s $dir/slurmd-node$i.pid ]] || ! kill -0 "$(cat "$dir/slurmd-node$i.pid")" 2>/dev/null; then
        STARTING_DIR=""  # a failed restart leaves the rest of the cluster as it is
        start_slurmd_on "$ID" "$i"
      fi
      ;;
  esac
}

usage() {
  die "usage: $0 start DIR [--nodes N] [--owner PID] [--slurmd-timeout S] | stop DIR |" \
    "cut|power-off|power-on DIR NODE_INDEX"
}

main() {
  local cmd="${1:-}" dir="${2:-}" nodes=1 owner="" timeout=300
  [[ -n $dir ]] || usage
  if [[ $cmd == cut || $cmd == power-off || $cmd == power-on ]]; then
    [[ $# == 3 ]] || usage
    node_op "$cmd" "$(cd "$dir" && pwd)" "$3"
    return 0
  fi
  shift 2
  while (($#)); do
    case "$1" in
      --nodes) nodes="${2:-}"; shift 2 || usage ;;
      --owner) owner="${2:-}"; shift 2 || usage ;;
      --slurmd-timeout) timeout="${2:-}"; shift 2 || usage ;;
      *) usage ;;
    esac
  done
  case "$cmd" in
    start)
      [[ $nodes =~ ^[0-9]+$ ]] && ((nodes >= 1 && nodes <= 64)) \
        || die "--nodes '$nodes': want a number of hosts from 1 to 64"
      [[ -z $owner ]] || kill -0 "$owner" 2>/dev/null || die "--owner $owner: no such process"
      [[ $timeout =~ ^[0-9]+$ ]] && ((timeout >= 5)) || die "--slurmd-timeout '$timeout': want seconds >= 5"
      start "$dir" "$nodes" "$owner" "$timeout"
      ;;
    stop) [[ $nodes == 1 && -z $owner && $timeout == 300 ]] || usage; stop "$dir" ;;
    *) usage ;;
  esac
}

main "$@"
