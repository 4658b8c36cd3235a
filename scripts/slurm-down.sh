#!/usr/bin/env bash
# Stop the one-node SLURM cluster started by scripts/slurm-up.sh, by the PIDs it recorded.
#
# Only processes whose pid file is under $LT_SLURM_DIR and whose command name matches the daemon
# are signalled (a stale pid file never kills an unrelated process). Idempotent.
# Usage: scripts/slurm-down.sh [--purge]   --purge also deletes the state dir (job records,
#        database, logs), so the next slurm-up.sh starts from nothing.
set -uo pipefail

R=${LT_SLURM_DIR:-/var/lib/longthought-slurm}
T0=$(date +%s.%N)
log() { echo "[slurm-down] $*" >&2; }

pid_of() {  # pid_of NAME: the recorded PID if that process is alive and is NAME
  local pidfile="$R/run/$1.pid" pid comm
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then rm -f "$pidfile"; return 1; fi
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  if [ "$comm" != "$1" ]; then
    log "pid $pid in $pidfile is '$comm', not $1: left alone"; rm -f "$pidfile"; return 1
  fi
  echo "$pid"
}

stop() {  # stop NAME...: TERM the recorded PIDs together, wait up to 15 s, then KILL
  local name pid i t0 alive pids=() names=()
  t0=$(date +%s.%N)
  for name in "$@"; do
    if pid=$(pid_of "$name"); then kill -TERM "$pid" 2>/dev/null; pids+=("$pid"); names+=("$name"); fi
  done
  [ "${#pids[@]}" -eq 0 ] && return 0
  for ((i = 0; i < 150; i++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      log "${names[$i]} (${pids[$i]}) ignored TERM: KILL"; kill -KILL "${pids[$i]}" 2>/dev/null
    fi
    rm -f "$R/run/${names[$i]}.pid"
    log "stopped ${names[$i]} (${pids[$i]})"
  done
  log "  in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
}

# compute daemons first, then accounting, then the database and authentication they use
stop slurmd slurmctld
stop slurmdbd
stop mariadbd munged
rm -f "$R/munge/munged.pid"
if [ "${1:-}" = --purge ]; then
  rm -rf "$R"
  log "removed $R"
fi
log "down in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
