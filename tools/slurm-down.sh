#!/usr/bin/env bash
# Stop the single-node Slurm of tools/slurm-up.sh: slurmd, slurmctld, then munged, each by its pid file.
# Jobs still running are killed with their slurmd. Packages and configuration stay (slurm-up.sh restarts).
set -euo pipefail

say() { echo "slurm-down: $*"; }
[ "$(id -u)" = 0 ] || { echo "slurm-down: error: run as root" >&2; exit 2; }

stop() {  # stop NAME PIDFILE: SIGTERM, then wait up to 20 s for the process to go
  local name=$1 pidfile=$2 pid
  if [ ! -f "$pidfile" ] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    say "$name not running"
    return
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then say "$name (pid $pid) still running after 20 s"; else say "stopped $name (pid $pid)"; fi
}

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
stop munged /run/munge/munged.pid
