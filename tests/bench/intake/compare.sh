#!/usr/bin/env bash
# A/B comparison of SubmitApplication variants on one private durable
# cluster, interleaved so that every variant sees the same load: the pgbench
# baseline, then ROUNDS rounds of every variant in turn, each with the
# clients in a second process (CPU per call of clients, service and
# PostgreSQL), each on a fresh database, then the baseline again.
#
#   bash tests/bench/intake/compare.sh BUILD_DIR 'service flags | client flags' ...
#   e.g. compare.sh build '--sync_pollers=1 |' '| --client_retries=on'
#   A variant may start with @/path/to/intake_bench to run another build.
#   SECONDS_SUBMIT=15 ROUNDS=2 CLIENTS=32 POOL=16 WRITERS=4 MAX_BATCH=64 MIN_BATCH=4 SHOW_THREADS=1
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${1:?build dir}
shift
SECONDS_SUBMIT=${SECONDS_SUBMIT:-15}
ROUNDS=${ROUNDS:-2}
COMMON_SERVE="--pool=${POOL:-16} --writers=${WRITERS:-4} --max_batch=${MAX_BATCH:-64} --min_batch=${MIN_BATCH:-4}"
COMMON_CLIENT="--clients=${CLIENTS:-32}"

source "$ROOT/tests/bench/pgbench/private_cluster.sh"
start_private_cluster intake-compare
source "$ROOT/tests/bench/intake/lib.sh"

echo "== pgbench baseline (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
pgbench_baseline
for round in $(seq "$ROUNDS"); do
  for variant in "$@"; do
    bench=$BUILD/tests/bench/intake/intake_bench
    spec=$variant
    if [[ $spec == @* ]]; then
      bench=${spec%% *}
      bench=${bench#@}
      spec=${spec#* }
    fi
    serve_flags=${spec%%|*}
    client_flags=""
    [[ $spec == *"|"* ]] && client_flags=${spec#*|}
    echo "== round $round variant [$variant] load $(cut -d' ' -f1 /proc/loadavg)"
    submit_apart "$bench" "$(fresh_db "cmp_$round")" "$SECONDS_SUBMIT" "$COMMON_SERVE $serve_flags" \
      "$COMMON_CLIENT $client_flags"
  done
done
echo "== pgbench baseline again"
pgbench_baseline
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
