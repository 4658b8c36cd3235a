#!/usr/bin/env bash
# Start a real one-node SLURM cluster on this machine, for CI and for developers.
#
# Why: `snakemake --profile slurm` must be tested against a real slurmctld, not assumed. This
# brings up munged, MariaDB (127.0.0.1 only), slurmdbd, slurmctld and slurmd from Debian's
# packages, without systemd and without cgroups (proctrack/linuxproc, task/none), with:
#   - partition `cpu` (Default=YES) and partition `gpu`, same node;
#   - fake GPUs (gres `gpu:fake:N`, gres.conf File= pointing at plain empty files): jobs asking
#     `--gpus=1` are scheduled and accounted, CUDA_VISIBLE_DEVICES stays empty, code runs on CPU;
#   - accounting through slurmdbd, so `sacct` (the executor plugin's default status command on
#     real clusters) works and the cluster keeps its own record of every job (rule name in the
#     job comment, partition, requested GPUs, state) after the job has left the queue;
#   - account `longthought` as root's default account.
#
# Usage: scripts/slurm-up.sh          (as root; idempotent: reuses a running cluster)
#        scripts/slurm-up.sh --check  exit 0 if the cluster is up and its node usable, else 1
# Env:   LT_SLURM_DIR   state, logs, pid files, database  (default /var/lib/longthought-slurm)
#        LT_SLURM_CPUS  CPUs of the node                  (default: nproc, at least 2)
#        LT_SLURM_MEM_MB memory of the node               (default: 80% of MemTotal, max 64000)
#        LT_SLURM_GPUS  fake GPUs on the node             (default 2)
#        LT_SLURM_DB_PORT MariaDB TCP port on 127.0.0.1   (default 3306)
# slurm.conf must live at the default path /etc/slurm/slurm.conf: the executor plugin's job-step
# wrapper removes SLURM_CONF from the environment before its inner `srun`.
# Stop with scripts/slurm-down.sh (by PID). Exit codes: 0 up, 1 failed, 3 cannot run here.
set -euo pipefail

R=${LT_SLURM_DIR:-/var/lib/longthought-slurm}
CPUS=${LT_SLURM_CPUS:-$(nproc)}; [ "$CPUS" -lt 2 ] && CPUS=2   # rules ask for 2 threads
MEM_TOTAL_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
MEM_DEFAULT=$((MEM_TOTAL_MB * 8 / 10)); [ "$MEM_DEFAULT" -gt 64000 ] && MEM_DEFAULT=64000
MEM_MB=${LT_SLURM_MEM_MB:-$MEM_DEFAULT}
GPUS=${LT_SLURM_GPUS:-2}
DB_PORT=${LT_SLURM_DB_PORT:-3306}
ACCOUNT=longthought
CLUSTER=longthought
HERE=$(cd "$(dirname "$0")" && pwd)

T_START=$(date +%s.%N)
log() { echo "[slurm-up] $*" >&2; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }
step() {  # step NAME CMD...: run one step and print how long it took
  local name=$1 t0; shift; t0=$(date +%s.%N)
  "$@"
  log "$name: $(elapsed "$t0") s"
}
die() { log "ERROR: $*"; exit 1; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
dump_logs() {
  local f
  for f in "$R"/log/*; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
}

if [ "$(id -u)" -ne 0 ]; then
  log "cannot start a cluster here: needs root (daemons, /etc/slurm, apt-get)"; exit 3
fi

node_state() { sinfo -h -N -n localhost -o %t 2>/dev/null | head -n 1; }

already_up() {
  local p
  for p in munged mariadbd slurmdbd slurmctld slurmd; do alive "$R/run/$p.pid" || return 1; done
  case "$(node_state)" in idle|mix|mixed|alloc|allocated|comp*) return 0 ;; esac
  return 1
}

install_packages() {
  local need=0 b
  for b in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/slurmdbd /usr/sbin/munged \
           /usr/sbin/mariadbd /usr/bin/mariadb-install-db /usr/bin/sbatch /usr/bin/sacct; do
    [ -x "$b" ] || need=1
  done
  if [ "$need" -eq 0 ]; then log "packages already installed"; return; fi
  command -v apt-get >/dev/null || { log "cannot start a cluster here: no apt-get"; exit 3; }
  # Package scripts must not start the services themselves (no systemd here; we start them).
  local policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    slurm-wlm slurmdbd munge mariadb-server mariadb-client >/dev/null
  [ "$policy_added" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

write_config() {
  mkdir -p "$R"/{run,log,spool/ctld,spool/d,dev,munge} /etc/slurm
  chown munge:munge "$R/munge"
  local i
  for ((i = 0; i < GPUS; i++)); do : > "$R/dev/gpu$i"; done   # fake GPU "devices"
  # The database password is made once per state dir and stays in root-only files.
  if [ ! -s "$R/db.pass" ]; then
    (umask 077; od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$R/db.pass")
  fi
  cat > /etc/slurm/slurm.conf <<CONF
# Written by longthought scripts/slurm-up.sh: a one-node test cluster. State: $R
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$R/spool/ctld
SlurmdSpoolDir=$R/spool/d
SlurmctldPidFile=$R/run/slurmctld.pid
SlurmdPidFile=$R/run/slurmd.pid
SlurmctldLogFile=$R/log/slurmctld.log
SlurmdLogFile=$R/log/slurmd.log
# no cgroups in this sandbox
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
ReturnToService=2
# trust the CPUs/memory written here over what slurmd detects (CI machines vary)
SlurmdParameters=config_overrides
MpiDefault=none
MinJobAge=300
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:fake:$GPUS State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=24:00:00 DefaultTime=01:00:00 State=UP
PartitionName=gpu Nodes=localhost MaxTime=24:00:00 DefaultTime=01:00:00 State=UP
CONF
  local last=$((GPUS - 1))
  echo "NodeName=localhost Name=gpu Type=fake File=$R/dev/gpu[0-$last]" > /etc/slurm/gres.conf
  (umask 077; cat > /etc/slurm/slurmdbd.conf <<CONF
# Written by longthought scripts/slurm-up.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$R/log/slurmdbd.log
PidFile=$R/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$R/db.pass")
StorageLoc=slurm_acct_db
CONF
  )
}

start_munge() {
  if ! [ -s /etc/munge/munge.key ]; then
    runuser -u munge -- /usr/sbin/mungekey --create >/dev/null
  fi
  mkdir -p /run/munge; chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged --pid-file="$R/munge/munged.pid" \
    --log-file="$R/munge/munged.log" --seed-file="$R/munge/munged.seed"
  ln -sf "$R/munge/munged.pid" "$R/run/munged.pid"
  munge -n | unmunge >/dev/null || die "munge does not authenticate"
}

start_mariadb() {
  if [ ! -d "$R/mysql/mysql" ]; then
    mariadb-install-db --user=root --datadir="$R/mysql" --auth-root-authentication-method=socket \
      >"$R/log/mariadb-install.log" 2>&1 || { cat "$R/log/mariadb-install.log" >&2; exit 1; }
  fi
  nohup /usr/sbin/mariadbd --user=root --datadir="$R/mysql" --socket="$R/run/mysqld.sock" \
    --pid-file="$R/run/mariadbd.pid" --bind-address=127.0.0.1 --port="$DB_PORT" \
    --skip-name-resolve --log-error="$R/log/mariadb.err" >/dev/null 2>&1 </dev/null &
  local i
  for ((i = 0; i < 60; i++)); do
    mariadb -S "$R/run/mysqld.sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5
  done
  mariadb -S "$R/run/mysqld.sock" -uroot -e "
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$(cat "$R/db.pass")';
    ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$(cat "$R/db.pass")';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" \
    || { dump_logs; die "MariaDB did not come up"; }
}

start_slurmdbd() {
  /usr/sbin/slurmdbd
  local i
  for ((i = 0; i < 60; i++)); do sacctmgr -n show cluster >/dev/null 2>&1 && break; sleep 0.5; done
  sacctmgr -n show cluster >/dev/null 2>&1 || { dump_logs; die "slurmdbd did not come up"; }
  # "Nothing new added" exits non-zero on a re-run; the association check below is what counts.
  sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
  sacctmgr -i add account "$ACCOUNT" Description=longthought Organization=longthought \
    >/dev/null 2>&1 || true
  sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null 2>&1 || true
  sacctmgr -n -P show assoc user=root format=account | grep -qx "$ACCOUNT" \
    || die "account $ACCOUNT is not associated with root"
}

start_slurm() {
  /usr/sbin/slurmctld -i
  /usr/sbin/slurmd -N localhost
  local i
  for ((i = 0; i < 120; i++)); do [ "$(node_state)" = idle ] && break; sleep 0.5; done
  if [ "$(node_state)" != idle ]; then
    dump_logs; sinfo >&2 || true; die "node localhost is not idle (state: $(node_state))"
  fi
}

smoke_test() {  # a real job on each partition, GPU job included
  srun -p cpu -n 1 -t 1 true
  srun -p gpu --gpus=1 -n 1 -t 1 true
}

if [ "${1:-}" = --check ]; then
  if already_up; then log "up (state dir $R)"; exit 0; fi
  log "not up (state dir $R)"; exit 1
fi
if already_up; then
  log "already up (state dir $R); nothing to do"
  sinfo >&2
  exit 0
fi
"$HERE/slurm-down.sh" >/dev/null 2>&1 || true   # stop a partial cluster (by PID) before restarting

step "install packages" install_packages
step "write /etc/slurm/{slurm,gres,slurmdbd}.conf" write_config
step "start munged" start_munge
step "start mariadb" start_mariadb
step "start slurmdbd + account" start_slurmdbd
step "start slurmctld + slurmd, node idle" start_slurm
step "smoke jobs (cpu, gpu)" smoke_test
sinfo >&2
for p in munged mariadbd slurmdbd slurmctld slurmd; do
  log "pid $p: $(cat "$R/run/$p.pid")"
done
log "cluster up in $(elapsed "$T_START") s (stop: scripts/slurm-down.sh)"
