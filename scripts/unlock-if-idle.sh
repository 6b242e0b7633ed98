#!/usr/bin/env bash
# Remove a stale Snakemake lock (left by a Snakemake killed with SIGKILL or a crashed machine), but
# only when no Snakemake process is working in this directory: a live run keeps its lock.
set -euo pipefail
cd "$(dirname "$0")/.."
SNAKEMAKE=${1:-snakemake}
[ -n "$(ls -A .snakemake/locks 2>/dev/null)" ] || exit 0
here=$(pwd -P)
for pid in $(pgrep -f snakemake 2>/dev/null || true); do
  [ "$pid" = "$$" ] && continue
  if [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$here" ] && grep -qa snakemake "/proc/$pid/cmdline" 2>/dev/null; then
    echo "unlock-if-idle: Snakemake (pid $pid) is running in $here; leaving its lock" >&2
    exit 0
  fi
done
echo "unlock-if-idle: removing a stale Snakemake lock (no Snakemake runs in $here)" >&2
"$SNAKEMAKE" --unlock --cores 1 >/dev/null
