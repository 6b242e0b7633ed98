#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for tests and CI (no systemd here: the daemons
# are started by hand). Usage: scripts/slurm-local.sh install|start|stop|status
# Needs root. `install` takes the Debian packages; `start` writes /etc/slurm/slurm.conf and starts
# munged, slurmctld and slurmd with their output detached from the caller's pipes.
set -euo pipefail
STATE=/var/lib/wmil-slurm
PIDS=/run/wmil-slurm

install() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
  fi
}

write_conf() {
  local host node mem
  host=$(hostname -s)
  # Boards/Sockets/Cores/Threads as slurmd sees them; RealMemory ~90% so the node is never drained
  node=$(slurmd -C | head -1 | sed -E 's/ RealMemory=[0-9]+//; s/ CPUs=[0-9]+//')
  mem=$(slurmd -C | head -1 | sed -E 's/.*RealMemory=([0-9]+).*/\1/')
  mem=$((mem * 9 / 10))
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d"
  chown slurm:slurm "$STATE/ctld"
  cat > /etc/slurm/slurm.conf <<EOF
ClusterName=wmil
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$PIDS/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MailProg=/bin/true
# keep finished jobs visible to squeue: the Snakemake plugin then never falls back to sacct
MinJobAge=600
# a job asking for more than the node has is refused instead of pending forever
EnforcePartLimits=ALL
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
${node} NodeAddr=127.0.0.1 RealMemory=${mem} State=UNKNOWN
PartitionName=main Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  install
  write_conf
  mkdir -p /run/munge /run/slurm "$PIDS"
  chown munge:munge /run/munge
  chown slurm:slurm /run/slurm
  chmod 777 "$PIDS"
  if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1
  fi
  stop_daemons
  slurmctld -i </dev/null >/dev/null 2>&1
  slurmd </dev/null >/dev/null 2>&1
  for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "slurm-local: cluster up ($(sinfo -h -o '%N %c CPUs %m MB'))"
      return 0
    fi
    sleep 0.5
  done
  echo "slurm-local: the node did not come up; logs in $STATE" >&2
  return 1
}

stop_daemons() {
  for daemon in slurmd slurmctld; do
    if [ -f "$PIDS/$daemon.pid" ]; then
      kill "$(cat "$PIDS/$daemon.pid")" 2>/dev/null || true
      rm -f "$PIDS/$daemon.pid"
    fi
  done
  sleep 0.5
}

stop() {
  scancel --user=root 2>/dev/null || true
  stop_daemons
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) sinfo && squeue -t all ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
