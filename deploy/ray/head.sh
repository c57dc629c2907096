#!/usr/bin/env bash
# Start the head node of a Ray cluster for `skydistill simulate --ray-address HOST:PORT`.
#
#   deploy/ray/head.sh                      # 127.0.0.1:6379, all cores, /tmp/ray
#   RAY_HOST=10.0.0.5 RAY_PORT=6380 RAY_NUM_CPUS=8 deploy/ray/head.sh
#
# RAY_TEMP_DIR gives the cluster its own folder (logs, sockets, the address file), so other
# Ray users on the machine do not pick it up by accident; keep it short (socket paths).
# Stop it by PID with deploy/ray/stop.sh (same RAY_TEMP_DIR); `ray stop` would stop every Ray
# cluster of this user on the node.
set -euo pipefail
RAY_BIN=${RAY_BIN:-ray}
args=(start --head
  --node-ip-address "${RAY_HOST:-127.0.0.1}"
  --port "${RAY_PORT:-6379}"
  --disable-usage-stats
  --include-dashboard=false)
if [[ -n "${RAY_NUM_CPUS:-}" ]]; then args+=(--num-cpus "$RAY_NUM_CPUS"); fi
if [[ -n "${RAY_TEMP_DIR:-}" ]]; then args+=(--temp-dir "$RAY_TEMP_DIR"); fi
export RAY_USAGE_STATS_ENABLED=0
exec "$RAY_BIN" "${args[@]}"
