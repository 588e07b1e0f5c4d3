#!/usr/bin/env bash
# A two-node Slurm cluster on this one machine, for the tests and for trying LAUNCHER=slurm before a real
# cluster: munge, slurmctld and two slurmd daemons started as nodes n1 and n2 (`slurmd -N`), each with its own
# port, spool and log, 1 CPU each, in partition `local`. Debian's slurm-wlm and munge packages are installed when
# missing (apt-get, as root). Everything the cluster writes lives under $SMOLLM3_SLURM_DIR
# (default /tmp/smollm3-slurm); `stop` kills the daemons it started and leaves that folder for inspection.
#
# Usage: pipeline/local_slurm.sh install|start|check|status|stop|node-down NODE|node-up NODE
#   start      writes slurm.conf, starts munged, slurmctld, slurmd n1 and n2, waits for both nodes to be idle
#   check      sinfo shows two idle nodes and `srun -N2` runs a task on each (exit 1 otherwise)
#   stop       stops the daemons started by `start` (also after a failure)
#   node-down  a lost node (the drills): SIGKILL its slurmd, the job steps on it (slurmstepd) and their tasks
#   node-up    starts the node's slurmd again and waits until it is up (ReturnToService=2 takes it back)
# Then: export SLURM_CONF=$SMOLLM3_SLURM_DIR/slurm.conf (start prints it) and use sbatch / srun / squeue.
set -euo pipefail

DIR=${SMOLLM3_SLURM_DIR:-/tmp/smollm3-slurm}
CONF=$DIR/slurm.conf
HOST=$(hostname -s)
NODES=(n1 n2)
CTLD_PORT=${SMOLLM3_SLURM_PORT:-16817}
export SLURM_CONF=$CONF

log() { echo "[local-slurm] $*"; }
die() { echo "[local-slurm] $*" >&2; exit 1; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then
        log "slurm-wlm and munge are installed ($(slurmd -V))"
        return
    fi
    [ "$(id -u)" = 0 ] || die "slurm-wlm and munge are missing: run this as root to install them"
    log "installing slurm-wlm and munge (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
    mkdir -p "$DIR/state" "$DIR/log"
    local mem
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 4 ))  # MiB per node: a quarter of the machine
    {
        echo "# written by pipeline/local_slurm.sh: two nodes on one host"
        echo "ClusterName=smollm3local"
        echo "SlurmctldHost=$HOST"
        echo "SlurmctldPort=$CTLD_PORT"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "AuthType=auth/munge"
        echo "StateSaveLocation=$DIR/state"
        echo "SlurmdSpoolDir=$DIR/spool-%n"
        echo "SlurmctldPidFile=$DIR/slurmctld.pid"
        echo "SlurmdPidFile=$DIR/slurmd-%n.pid"
        echo "SlurmctldLogFile=$DIR/log/slurmctld.log"
        echo "SlurmdLogFile=$DIR/log/slurmd-%n.log"
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/none"
        echo "MpiDefault=none"
        echo "ReturnToService=2"
        echo "SchedulerType=sched/backfill"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_CPU"
        echo "JobCompType=jobcomp/none"
        echo "SlurmctldTimeout=30"
        echo "SlurmdTimeout=30"
        echo "KillWait=5"
        echo "InactiveLimit=0"
        echo "MinJobAge=3600"
        local port=16818
        for n in "${NODES[@]}"; do
            echo "NodeName=$n NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$port CPUs=1 RealMemory=$mem State=UNKNOWN"
            port=$((port + 1))
        done
        echo "PartitionName=local Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
    } > "$CONF"
    for n in "${NODES[@]}"; do mkdir -p "$DIR/spool-$n"; done
}

start_munge() {
    if pgrep -x munged >/dev/null; then
        return
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- munged
    else
        munged --force
    fi
}

idle_nodes() { sinfo -h -N -o "%N %t" 2>/dev/null | awk '$2 == "idle" {n++} END {print n + 0}'; }

start() {
    install
    stop quiet
    write_conf
    start_munge
    slurmctld -f "$CONF"
    for n in "${NODES[@]}"; do slurmd -f "$CONF" -N "$n"; done
    local t=0
    until [ "$(idle_nodes)" = "${#NODES[@]}" ]; do
        t=$((t + 1))
        if [ $t = 10 ]; then scontrol update nodename="$(IFS=,; echo "${NODES[*]}")" state=resume 2>/dev/null || true; fi
        if [ $t -ge 60 ]; then
            sinfo -N >&2 || true
            tail -n 20 "$DIR"/log/*.log >&2 || true
            die "the nodes did not become idle in 60 s (logs above, $DIR/log)"
        fi
        sleep 1
    done
    log "two idle nodes (${NODES[*]}) in partition local; export SLURM_CONF=$CONF"
}

check() {
    [ "$(idle_nodes)" = "${#NODES[@]}" ] || { sinfo -N >&2; die "not ${#NODES[@]} idle nodes"; }
    local hosts
    # shellcheck disable=SC2016  # expanded by the task's shell on its node
    hosts=$(timeout 60 srun -N2 -n2 --ntasks-per-node=1 bash -c 'echo "$SLURMD_NODENAME"' | sort | tr '\n' ' ')
    [ "$hosts" = "n1 n2 " ] || die "srun -N2 ran on '$hosts', not on n1 and n2"
    log "check: sinfo shows ${#NODES[@]} idle nodes; srun -N2 ran one task on each of $hosts"
}

stop() {
    local quiet=${1:-}
    for f in "$DIR"/slurmd-*.pid "$DIR"/slurmctld.pid; do
        [ -f "$f" ] || continue
        local pid
        pid=$(cat "$f")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
    [ -n "$quiet" ] || log "stopped (logs kept in $DIR/log)"
}

node_down() {
    local n=$1 pids=() p parent
    [ -f "$DIR/slurmd-$n.pid" ] || die "no slurmd pid file for node $n in $DIR"
    kill -9 "$(cat "$DIR/slurmd-$n.pid")" 2>/dev/null || true
    rm -f "$DIR/slurmd-$n.pid"
    for p in /proc/[0-9]*; do  # the node's tasks carry SLURMD_NODENAME; their slurmstepd is their parent
        { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qx "SLURMD_NODENAME=$n" || continue
        pids+=("${p#/proc/}")
        parent=$(ps -o ppid= -p "${p#/proc/}" | tr -d ' ')
        if [ -n "$parent" ] && { tr '\0' ' ' < "/proc/$parent/cmdline"; } 2>/dev/null | grep -q '^slurmstepd'; then
            pids+=("$parent")
        fi
    done
    [ ${#pids[@]} = 0 ] || kill -9 "${pids[@]}" 2>/dev/null || true
    log "node $n lost: its slurmd and ${#pids[@]} job process(es) killed"
}

node_up() {
    local n=$1 t=0
    slurmd -f "$CONF" -N "$n"
    until sinfo -h -N -n "$n" -o "%t" | grep -qxE "idle|alloc|mix|comp"; do  # up, whether or not a job took it
        t=$((t + 1))
        if [ $((t % 10)) = 0 ]; then scontrol update nodename="$n" state=resume 2>/dev/null || true; fi
        [ $t -lt 120 ] || { sinfo -N >&2; die "node $n did not become idle in 120 s"; }
        sleep 1
    done
    log "node $n is back"
}

status() {
    sinfo -N || true
    squeue || true
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    check) check ;;
    stop) stop ;;
    status) status ;;
    node-down) node_down "${2:?node-down NODE}" ;;
    node-up) node_up "${2:?node-up NODE}" ;;
    *) echo "usage: $0 install|start|check|status|stop|node-down NODE|node-up NODE" >&2; exit 2 ;;
esac
