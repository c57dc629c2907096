#!/usr/bin/env bash
# Stop the Ray processes of ONE cluster on this node: those whose command line names its
# RAY_TEMP_DIR (head.sh --temp-dir; Ray's gcs_server, raylet, monitor, ...) and their children,
# by PID. Unlike `ray stop` (every Ray process of this user on the node) or `pkill -f ray`, it
# leaves other people's clusters alone.
#
#   RAY_TEMP_DIR=/tmp/rayAb12 deploy/ray/stop.sh
#
# SIGTERM first; what is still alive after RAY_STOP_GRACE seconds (default 10) gets SIGKILL
# (Ray's gcs_server does not always exit on SIGTERM).
set -euo pipefail
: "${RAY_TEMP_DIR:?set RAY_TEMP_DIR to the folder the cluster was started with (head.sh)}"
grace=${RAY_STOP_GRACE:-10}

cluster_pids() {
  local pids p
  pids=$(pgrep -u "$(id -u)" -f -- "$RAY_TEMP_DIR" || true)
  for p in $pids; do
    [[ $p == "$$" ]] && continue
    echo "$p"
    pgrep -P "$p" || true
  done | sort -un
}

pids=$(cluster_pids)
if [[ -z $pids ]]; then
  echo "no Ray process names $RAY_TEMP_DIR: nothing to stop"
  exit 0
fi
echo "stopping Ray cluster of $RAY_TEMP_DIR: PIDs" $pids
# shellcheck disable=SC2086  # word splitting of the PID list is intended
kill $pids 2>/dev/null || true
for _ in $(seq "$grace"); do
  sleep 1
  pids=$(cluster_pids)
  [[ -z $pids ]] && exit 0
done
echo "still running after ${grace} s, sending SIGKILL: PIDs" $pids
# shellcheck disable=SC2086
kill -9 $pids 2>/dev/null || true
for _ in 1 2 3 4 5; do
  sleep 1
  [[ -z $(cluster_pids) ]] && exit 0
done
echo "PIDs $(cluster_pids | tr '\n' ' ')survive SIGKILL (zombies?): see ps -o pid,stat,args" >&2
exit 1
