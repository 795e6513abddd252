#!/usr/bin/env bash
# A single-node Slurm on this Debian machine, for the `slurm` tests (make test-slurm) and for trying
# `nalkit run ... --executor slurm` without a cluster. Run as root; safe to run again (idempotent):
#   * installs slurm-wlm and munge with apt when they are missing;
#   * writes /etc/slurm/slurm.conf and cgroup.conf for this host (controller and only node = `hostname -s`,
#     CPUs and memory from `slurmd -C`, a default partition `debug` and a partition `urgent` whose jobs
#     preempt debug's, no accounting: sacct is unavailable, as on many small clusters), unless a
#     slurm.conf not written by this script is there;
#   * starts munged (as the munge user), slurmctld and slurmd unless they already answer;
#   * waits until `sinfo` reports the node idle (NALKIT_SLURM_WAIT seconds, default 120).
# Processes track by parent pid (proctrack/linuxproc, task/none): no cgroups needed, so it also works in
# containers. tools/slurm-down.sh stops the daemons again.
#
# Settings that the tests rely on (and what a real cluster usually has instead):
#   JobRequeue=1        batch jobs may be requeued (the Slurm default)
#   KillWait=15         seconds between SIGTERM and SIGKILL when a job is stopped (default 30)
#   cred_expire=10      a requeued job may start again about 2 x this later
#                       (default 120: on a real cluster a requeued job restarts after two minutes or more)
#   MinJobAge=300       finished jobs stay visible to squeue/scontrol for 5 minutes (the default)
#   partition urgent    its jobs preempt those of debug, which are requeued (PreemptMode=REQUEUE)
set -euo pipefail

say() { echo "slurm-up: $*"; }
die() { echo "slurm-up: error: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts daemons)"
command -v apt-get >/dev/null || die "needs Debian or Ubuntu (apt-get); on a real cluster use its Slurm"

HOST=$(hostname -s)
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# written by nalkit tools/slurm-up.sh"
WAIT=${NALKIT_SLURM_WAIT:-120}
KILL_WAIT=${NALKIT_SLURM_KILL_WAIT:-15}
CRED_EXPIRE=${NALKIT_SLURM_CRED_EXPIRE:-10}

# --- packages -----------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
   || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null; }
else
  say "slurm-wlm and munge already installed ($(slurmd -V))"
fi

# --- configuration --------------------------------------------------------------------------------------
node_line=$(slurmd -C | head -1)   # NodeName=<host> CPUs=.. Boards=.. SocketsPerBoard=.. ... RealMemory=..
case "$node_line" in NodeName=*) ;; *) die "slurmd -C printed no node line: $node_line";; esac
new_conf=$(cat <<EOF
$MARK: a single-node cluster for tests; rerun the script to rewrite
ClusterName=nalkit
SlurmctldHost=$HOST
AuthType=auth/munge
AuthInfo=cred_expire=$CRED_EXPIRE
SlurmUser=slurm
SlurmdUser=root
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
KillWait=$KILL_WAIT
MinJobAge=300
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
$node_line State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=$HOST MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
EOF
)
mkdir -p "$CONF_DIR"
changed=0
if [ -f "$CONF" ] && ! head -1 "$CONF" | grep -qF "$MARK"; then
  say "$CONF exists and was not written by this script: using it as it is"
elif [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new_conf" ]; then
  say "$CONF up to date (node: $node_line)"
else
  printf '%s\n' "$new_conf" > "$CONF"
  changed=1
  say "wrote $CONF (controller and node $HOST, partitions debug and urgent; $node_line)"
fi
if [ ! -f "$CONF_DIR/cgroup.conf" ] || head -1 "$CONF_DIR/cgroup.conf" | grep -qF "$MARK"; then
  # not used by proctrack/linuxproc and task/none; written so that slurmd finds a consistent file
  printf '%s\nCgroupPlugin=autodetect\n' "$MARK" > "$CONF_DIR/cgroup.conf"
fi
for d in /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm; do
  mkdir -p "$d" && chown slurm:slurm "$d"
done

# --- munge ----------------------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  say "creating /etc/munge/munge.key"
  (command -v mungekey >/dev/null && mungekey --create --keyfile=/etc/munge/munge.key) \
    || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
fi
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "munged already running"
else
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  say "started munged (pid $(cat /run/munge/munged.pid 2>/dev/null || echo ?))"
fi

# --- daemons --------------------------------------------------------------------------------------------
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() {  # a daemon started from an older slurm.conf: `scontrol reconfigure` does not apply AuthInfo
  local pid; pid=$(cat "$1"); kill -TERM "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  die "$2 (pid $pid) did not stop within 20 s"
}
for daemon in slurmctld slurmd; do
  pidfile=/run/$daemon.pid
  if alive "$pidfile" && [ "$changed" = 1 ]; then
    stop "$pidfile" "$daemon"
    say "stopped $daemon to apply the new configuration (running jobs continue)"
  fi
  if alive "$pidfile"; then
    say "$daemon already running"
  else
    "$daemon"
    say "started $daemon (log /var/log/slurm/$daemon.log)"
  fi
done

# --- wait for the node ----------------------------------------------------------------------------------
deadline=$((SECONDS + WAIT))
while :; do
  state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1 || true)
  case "$state" in
    idle|mixed|allocated|completing) break;;
    down*|drain*|drained*|fail*)
      scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true;;
  esac
  if [ $SECONDS -ge $deadline ]; then
    die "node $HOST is '${state:-not reported}' after ${WAIT} s; see /var/log/slurm/slurmctld.log and slurmd.log"
  fi
  sleep 1
done
say "ready in ${SECONDS} s: $(sinfo -h -o '%P %a %D %T %c CPUs %m MB' | head -1)"
