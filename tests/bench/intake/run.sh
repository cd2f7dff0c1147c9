#!/usr/bin/env bash
# Intake benchmarks (docs/BENCHMARKS.md, "Intake"), all in one run on one
# private durable PostgreSQL cluster (fsync, synchronous_commit and
# full_page_writes on), so the ratio to the pgbench baseline compares like
# with like:
#   1. the pgbench baseline (tests/bench/pgbench/run.sh --url ...)
#   2. SubmitApplication, 32 concurrent clients, 30 s, outbox rows included
#   3. ImportApplications of the 541-row Forum fixture
#   4. ImportApplications of 1,000,000 synthetic rows
#
#   bash tests/bench/intake/run.sh [BUILD_DIR]      default: build
#   SECONDS_SUBMIT=30 ROWS=1000000 CLIENTS=32 POOL=16   overrides
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${1:-$ROOT/build}
BENCH=$BUILD/tests/bench/intake/intake_bench
SECONDS_SUBMIT=${SECONDS_SUBMIT:-30}
ROWS=${ROWS:-1000000}
CLIENTS=${CLIENTS:-32}
POOL=${POOL:-16}
FIXTURES=$ROOT/tests/fixtures
[ -f "$FIXTURES/forum_cases_2024.csv" ] || FIXTURES=$ROOT/../shared/fixtures
[ -x "$BENCH" ] || { echo "build intake_bench first: cmake --build $BUILD --target intake_bench" >&2; exit 2; }

source "$ROOT/tests/bench/pgbench/private_cluster.sh"
start_private_cluster intake-bench
BASE=$PG_BENCH_BASE

echo "== pgbench baseline"
bash "$ROOT/tests/bench/pgbench/run.sh" --url "$BASE/postgres" | grep -E "^(server settings|machine|BASELINE)"

fresh_db() { psql -X -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; echo "$BASE/$1"; }

echo "== SubmitApplication"
"$BENCH" --db_url="$(fresh_db submit)" --mode=submit --clients="$CLIENTS" --seconds="$SECONDS_SUBMIT" --pool="$POOL" 2>/dev/null | grep RESULT
echo "== import fixture"
"$BENCH" --db_url="$(fresh_db fixture)" --mode=import --file="$FIXTURES/forum_cases_2024.csv" 2>/dev/null | grep RESULT
echo "== import synthetic"
"$BENCH" --db_url="$(fresh_db synthetic)" --mode=import --synthetic_rows="$ROWS" 2>/dev/null | grep RESULT
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
