#!/usr/bin/env bash
# Join a worker node to the cluster started by head.sh (run on every other machine).
#
#   RAY_HEAD=10.0.0.5:6379 RAY_NUM_CPUS=16 deploy/ray/worker.sh
#
# Every node needs the same Python environment (skydistill installed, same torch) and the
# data folder at the same path as on the head: the virtual clients read their tiles there.
set -euo pipefail
RAY_BIN=${RAY_BIN:-ray}
: "${RAY_HEAD:?set RAY_HEAD=HOST:PORT of the head node}"
args=(start --address "$RAY_HEAD" --disable-usage-stats)
if [[ -n "${RAY_HOST:-}" ]]; then args+=(--node-ip-address "$RAY_HOST"); fi
if [[ -n "${RAY_NUM_CPUS:-}" ]]; then args+=(--num-cpus "$RAY_NUM_CPUS"); fi
export RAY_USAGE_STATS_ENABLED=0
exec "$RAY_BIN" "${args[@]}"
