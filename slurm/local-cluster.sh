#!/usr/bin/env bash
# A real single-node Slurm cluster on localhost, for the `slurm` tests and for trying the sbatch
# templates without a cluster. Built from Debian's slurm-wlm + munge packages; needs root.
#
#   slurm/local-cluster.sh up       install (if missing), configure, start, wait until the node is idle
#   slurm/local-cluster.sh down     stop the daemons
#   slurm/local-cluster.sh status   sinfo + squeue
#
# Configuration that runs inside containers/sandboxes without systemd or cgroups:
# ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, no cgroup plugins.
set -euo pipefail

STATE=${SLURM_LOCAL_STATE:-/var/lib/biogpt-slurm}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
HOST=$(hostname -s)

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "local-cluster.sh: must run as root (it installs packages and starts slurmctld/slurmd)" >&2
        exit 1
    fi
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then
        return
    fi
    echo "local-cluster: installing slurm-wlm and munge from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

write_config() {
    local cpus mem_mb
    # At least 4 schedulable CPUs even on a 2-core machine (config_overrides below lets slurmd
    # accept more than it counts): the test jobs mostly wait (requeue delays, polling), so several
    # can share the cores; a real cluster never needs this.
    cpus=$(nproc)
    [ "$cpus" -lt 4 ] && cpus=4
    # Leave ~1 GiB to the OS so slurmd does not drain the node for "low RealMemory".
    mem_mb=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 1024 ))
    mkdir -p "$CONF_DIR" "$STATE"/{ctld,d,log} /run/munge /var/log/munge /var/lib/munge /etc/munge
    cat > "$CONF.new" <<CONF
# Written by slurm/local-cluster.sh: a single-node test cluster on $HOST.
ClusterName=biogpt-local
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire+1 s before it may start again (default 120 s); 5 s keeps the
# requeue tests short. Real clusters keep their default.
AuthInfo=cred_expire=5
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job that asks for no memory gets its CPUs' share, not the whole node (the default), so small
# jobs can run side by side.
DefMemPerCPU=$(( mem_mb / cpus ))
SchedulerType=sched/backfill
# Look at pending jobs every 2 s (defaults: 60 s main loop, 30 s backfill): a requeued or dependent
# job starts as soon as it may, which keeps the tests short on a one-node cluster.
SchedulerParameters=sched_interval=2,bf_interval=2
ReturnToService=2
JobRequeue=1
MaxJobCount=10000
MaxArraySize=1001
KillWait=30
# Give a job's signal handler time to write its checkpoint after SIGTERM before SIGKILL.
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MpiDefault=none
SlurmdParameters=config_overrides
LaunchParameters=use_interactive_step
NodeName=$HOST CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
    # No cgroup.conf: with proctrack/linuxproc and task/none, slurmd 22.05 then needs no cgroup
    # plugin at all (its "CgroupPlugin=disabled" value only exists from 23.x on).
    rm -f "$CONF_DIR/cgroup.conf"
    if [ -f "$CONF" ] && cmp -s "$CONF.new" "$CONF"; then
        rm -f "$CONF.new"
        CONFIG_CHANGED=0
    else
        mv "$CONF.new" "$CONF"
        CONFIG_CHANGED=1
    fi
}

start_munge() {
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
    chmod 0400 /etc/munge/munge.key
    chmod 0700 /etc/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    if ! pgrep -x munged >/dev/null; then
        if id munge >/dev/null 2>&1; then
            runuser -u munge -- /usr/sbin/munged --force
        else
            /usr/sbin/munged --force
        fi
    fi
    munge -n | unmunge >/dev/null
}

wait_idle() {
    local i
    for i in $(seq 1 90); do
        state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n1 || true)
        case "$state" in
            idle*|mix*|alloc*) echo "local-cluster: node $HOST is $state"; return 0 ;;
            down*|drain*|drng*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 1
    done
    echo "local-cluster: the node did not become idle; see $STATE/log/slurmctld.log and slurmd.log" >&2
    sinfo -R >&2 || true
    return 1
}

stop_daemons() {
    # By the pids the daemons wrote (this script started them), never by process name.
    local name pid
    for name in slurmd slurmctld; do
        pid=$(cat "$STATE/$name.pid" 2>/dev/null || true)
        # A stale pid file may name an unrelated process by now: check the name first.
        if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
            kill "$pid" 2>/dev/null || true
        fi
    done
    for _ in $(seq 1 40); do
        pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || return 0
        sleep 0.5
    done
    echo "local-cluster: slurmd/slurmctld still running after 20 s" >&2
    return 1
}

up() {
    need_root
    install_packages
    write_config
    start_munge
    if [ "$CONFIG_CHANGED" = 1 ] && { pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; }; then
        echo "local-cluster: slurm.conf changed; restarting the daemons"
        stop_daemons
    fi
    pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld -i
    pgrep -x slurmd >/dev/null || /usr/sbin/slurmd
    wait_idle
}

down() {
    need_root
    stop_daemons
    echo "local-cluster: stopped"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) sinfo; squeue ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
