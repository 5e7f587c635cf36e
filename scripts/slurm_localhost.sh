#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for the `slurm` tests and for
# trying `unlearnbench sweep --executor slurm` without a cluster.
#
#   scripts/slurm_localhost.sh start    install (apt, first time), configure, start; waits until the node is idle
#   scripts/slurm_localhost.sh stop     cancel every job, stop every daemon it started (reverse order, by pid
#                                       file) and clear the controller's and the node's state: a restart is empty
#   scripts/slurm_localhost.sh status   daemons, node and recent jobs
#
# Needs root and a Debian/Ubuntu machine (apt). No systemd needed: each daemon
# is started by hand in order — munged, mariadbd, slurmdbd (job accounting,
# which submitit needs to read job states), slurmctld, slurmd — with one node
# named `localhost` and a partition `debug`. The files it writes carry a
# marker line; it refuses to overwrite a slurm.conf it did not write.
set -euo pipefail

MARK="# written by unlearnbench scripts/slurm_localhost.sh"
CONF_DIR=/etc/slurm
RUN=/run/unlearnbench-slurm          # pid files
LOG=/var/log/slurm
CTLD_STATE=/var/spool/slurmctld      # StateSaveLocation: the controller's saved jobs
SLURMD_SPOOL=/var/spool/slurmd       # SlurmdSpoolDir: the node's job scripts and step state
DB_SOCKET=/run/mysqld/mysqld.sock
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)   # start order

log() { echo "slurm_localhost: $*" >&2; }
die() { log "error: $*"; exit 1; }

pid_of() { [[ -s "$RUN/$1.pid" ]] && cat "$RUN/$1.pid"; }
# running, and really that daemon (a stale pid file may name a reused pid)
alive() { local pid; pid=$(pid_of "$1") && kill -0 "$pid" 2>/dev/null && grep -q "^$1" "/proc/$pid/comm"; }

install_packages() {
    local missing=()
    for bin in slurmctld slurmd sbatch sacct munged slurmdbd mariadbd; do
        command -v "$bin" >/dev/null || missing+=("$bin")
    done
    [[ ${#missing[@]} -eq 0 ]] && return
    log "installing Slurm, munge, slurmdbd and MariaDB (apt; missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge slurmdbd mariadb-server >/dev/null
}

write_config() {
    if [[ -f $CONF_DIR/slurm.conf ]] && ! grep -qF "$MARK" "$CONF_DIR/slurm.conf"; then
        die "$CONF_DIR/slurm.conf exists and was not written by this script; not touching it"
    fi
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.85)}' /proc/meminfo)
    mkdir -p "$CONF_DIR" "$RUN" "$LOG" "$CTLD_STATE" "$SLURMD_SPOOL" /run/mysqld
    chown slurm:slurm "$CTLD_STATE" "$LOG"
    mkdir -p /var/log/mysql
    chown mysql:mysql /run/mysqld /var/log/mysql
    cat >"$CONF_DIR/slurm.conf" <<EOF
$MARK
ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
# also how long a requeued job waits before it may start again (default 120 s)
AuthInfo=cred_expire=10
StateSaveLocation=$CTLD_STATE
SlurmdSpoolDir=$SLURMD_SPOOL
# set by start from the accounting database: job ids go on where they stopped, never reused
FirstJobId=1
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
# no cgroups in containers: track processes through /proc, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
ReturnToService=2
KillWait=5
MinJobAge=30
MailProg=/bin/true
JobRequeue=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
NodeName=localhost CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$CONF_DIR/slurmdbd.conf" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurm
EOF
    chown slurm:slurm "$CONF_DIR/slurmdbd.conf"
    chmod 600 "$CONF_DIR/slurmdbd.conf"
    # munge refuses to run with root-owned state or log dirs
    mkdir -p /var/log/munge /var/lib/munge /run/munge
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
    chown -R munge:munge /etc/munge /var/log/munge /var/lib/munge /run/munge
    chmod 400 /etc/munge/munge.key
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what did not come up within ${seconds}s (logs: $LOG, /var/log/munge, /var/log/mysql)"
        sleep 0.2
    done
}

start() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (installs packages, starts daemons)"
    install_packages
    write_config

    if ! alive munged; then
        runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
        wait_for 10 munged test -s /run/munge/munged.pid
        cp /run/munge/munged.pid "$RUN/munged.pid"
    fi
    wait_for 10 munge sh -c 'munge -n | unmunge'

    if ! alive mariadbd; then
        rm -f /run/mysqld/mariadbd.pid
        runuser -u mysql -- /usr/sbin/mariadbd --datadir=/var/lib/mysql --socket=$DB_SOCKET \
            --pid-file=/run/mysqld/mariadbd.pid --bind-address=127.0.0.1 \
            --log-error=/var/log/mysql/error.log >/dev/null 2>&1 &
        wait_for 30 mariadbd mariadb --socket=$DB_SOCKET -e "SELECT 1"
        cp /run/mysqld/mariadbd.pid "$RUN/mariadbd.pid"
    fi
    mariadb --socket=$DB_SOCKET <<'SQL'
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL

    if ! alive slurmdbd; then
        /usr/sbin/slurmdbd
        wait_for 30 slurmdbd sacctmgr -n list cluster
    fi
    if ! alive slurmctld; then
        set_first_job_id
        /usr/sbin/slurmctld
        wait_for 30 slurmctld scontrol ping
    fi
    # slurmctld registers the cluster in the accounting database by itself
    if ! alive slurmd; then
        /usr/sbin/slurmd -N localhost
    fi
    wait_for 30 "node localhost" sh -c 'sinfo -h -n localhost -o %t | grep -Eq "^(idle|mix|alloc)"'
    log "cluster up: $(sinfo -h -o '%P %D node(s) %t %c CPUs %m MB')"
}

# The state stop clears also held the job id counter; without it job ids would start again at 1 and
# `sacct -j ID` would answer for an old job and a new one. Start from the last id accounting knows.
set_first_job_id() {
    local last
    last=$( { sacct -X -n -P -a -S 2000-01-01 -o JobIDRaw 2>/dev/null; cat "$CONF_DIR/last_job_id" 2>/dev/null; } \
            | grep -Eo '^[0-9]+' | sort -n | tail -1) || true
    sed -i "s/^FirstJobId=.*/FirstJobId=$((${last:-0} + 1))/" "$CONF_DIR/slurm.conf"
}

# Cancel every job (pending, running, requeued), so that none is saved and restored by the next start,
# and wait until they have left the queue (their processes killed by slurmd, their end in accounting).
cancel_jobs() {
    local jobs
    alive slurmctld || return 0
    jobs=$(squeue -h -o %F 2>/dev/null | sort -u | tr '\n' ' ') || return 0
    [[ -n ${jobs// /} ]] || return 0
    log "cancelling job(s) $jobs"
    # shellcheck disable=SC2086  # one word per job id
    scancel $jobs || true
    for _ in $(seq 150); do
        [[ -z $(squeue -h -o %i 2>/dev/null) ]] && return 0
        sleep 0.2
    done
    log "some jobs were still in the queue after 30 s: $(squeue -h -o '%i %T' | tr '\n' ' ')"
}

# Empty the controller's state save location and the node's spool (the daemons are stopped): the next start
# begins with an empty queue, whatever the last one left there.
clear_state() {
    local dir
    if ! grep -qsF "$MARK" "$CONF_DIR/slurm.conf"; then
        log "$CONF_DIR/slurm.conf was not written by this script; its state is left as it is"
        return 0
    fi
    if alive slurmctld || alive slurmd; then
        log "a Slurm daemon is still running; its state is left as it is"
        return 0
    fi
    for dir in "$CTLD_STATE" "$SLURMD_SPOOL"; do
        [[ -d $dir ]] && find "$dir" -mindepth 1 -delete
    done
    log "cleared $CTLD_STATE and $SLURMD_SPOOL"
}

stop() {
    local i name pid
    # the controller's job ids (squeue -t all: also the jobs it still remembers as ended), kept for the next
    # start: accounting may not have heard of the newest job yet when the daemons stop
    squeue -h -t all -o %A 2>/dev/null | grep -Eo '^[0-9]+' | sort -n | tail -1 > "$CONF_DIR/last_job_id.tmp" || true
    [ -s "$CONF_DIR/last_job_id.tmp" ] && mv "$CONF_DIR/last_job_id.tmp" "$CONF_DIR/last_job_id" || rm -f "$CONF_DIR/last_job_id.tmp"
    cancel_jobs
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        name=${DAEMONS[$i]}
        pid=$(pid_of "$name") || continue
        if alive "$name"; then
            kill -TERM "$pid"
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$pid" 2>/dev/null; then
                log "$name (pid $pid) did not stop in 10 s; killing it"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            log "stopped $name (pid $pid)"
        fi
        rm -f "$RUN/$name.pid"
    done
    clear_state
}

status() {
    local name rc=0
    for name in "${DAEMONS[@]}"; do
        if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: stopped"; rc=1; fi
    done
    if ((rc == 0)); then
        sinfo
        squeue
    fi
    return $rc
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
