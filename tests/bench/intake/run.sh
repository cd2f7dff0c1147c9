#!/usr/bin/env bash
# Intake benchmarks (docs/BENCHMARKS.md, "Intake"), all in one run on one
# private durable PostgreSQL cluster (fsync, synchronous_commit and
# full_page_writes on), so the ratio to the pgbench baseline compares like
# with like:
#   1. the pgbench baseline (tests/bench/pgbench/run.sh --url ...)
#   2. SubmitApplication, 32 concurrent clients, 30 s, outbox rows included,
#      once with clients and service in one process and once with the
#      clients in a second process, with the CPU per call of the clients,
#      the service and PostgreSQL (from /proc of the cluster's processes)
#   3. ImportApplications of the 541-row Forum fixture
#   4. ImportApplications of 1,000,000 synthetic rows
#
#   bash tests/bench/intake/run.sh [BUILD_DIR]      default: build
#   SECONDS_SUBMIT=30 ROWS=1000000 CLIENTS=32 POOL=16   overrides
#   WRITERS=4 MAX_BATCH=64 MIN_BATCH=4   the group commit's bounds (services/intake/group_commit.h)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${1:-$ROOT/build}
BENCH=$BUILD/tests/bench/intake/intake_bench
SECONDS_SUBMIT=${SECONDS_SUBMIT:-30}
ROWS=${ROWS:-1000000}
CLIENTS=${CLIENTS:-32}
POOL=${POOL:-16}
BATCHING="--writers=${WRITERS:-4} --max_batch=${MAX_BATCH:-64} --min_batch=${MIN_BATCH:-4}"
FIXTURES=$ROOT/tests/fixtures
[ -f "$FIXTURES/forum_cases_2024.csv" ] || FIXTURES=$ROOT/../shared/fixtures
[ -x "$BENCH" ] || { echo "build intake_bench first: cmake --build $BUILD --target intake_bench" >&2; exit 2; }

source "$ROOT/tests/bench/pgbench/private_cluster.sh"
start_private_cluster intake-bench

source "$ROOT/tests/bench/intake/lib.sh"

echo "== pgbench baseline"
pgbench_baseline

echo "== SubmitApplication (clients and service in one process)"
cpu0=$(pg_cpu)
out=$("$BENCH" --db_url="$(fresh_db submit)" --mode=submit --clients="$CLIENTS" --seconds="$SECONDS_SUBMIT" --pool="$POOL" $BATCHING 2>/dev/null | grep -E "^(RESULT|CPU|BATCH)")
echo "$out"
pg_cpu_per_call "$cpu0" "$out"

echo "== SubmitApplication (clients in a second process: CPU per call of each)"
submit_apart "$BENCH" "$(fresh_db submit2)" "$SECONDS_SUBMIT" "--pool=$POOL $BATCHING" "--clients=$CLIENTS"
echo "== import fixture"
"$BENCH" --db_url="$(fresh_db fixture)" --mode=import --file="$FIXTURES/forum_cases_2024.csv" 2>/dev/null | grep RESULT
echo "== import synthetic"
"$BENCH" --db_url="$(fresh_db synthetic)" --mode=import --synthetic_rows="$ROWS" 2>/dev/null | grep RESULT
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
