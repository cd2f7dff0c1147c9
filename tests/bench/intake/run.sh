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
#   WRITERS=4 MAX_BATCH=64   the group commit's bounds (services/intake/group_commit.h)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${1:-$ROOT/build}
BENCH=$BUILD/tests/bench/intake/intake_bench
SECONDS_SUBMIT=${SECONDS_SUBMIT:-30}
ROWS=${ROWS:-1000000}
CLIENTS=${CLIENTS:-32}
POOL=${POOL:-16}
BATCHING="--writers=${WRITERS:-4} --max_batch=${MAX_BATCH:-64}"
FIXTURES=$ROOT/tests/fixtures
[ -f "$FIXTURES/forum_cases_2024.csv" ] || FIXTURES=$ROOT/../shared/fixtures
[ -x "$BENCH" ] || { echo "build intake_bench first: cmake --build $BUILD --target intake_bench" >&2; exit 2; }

source "$ROOT/tests/bench/pgbench/private_cluster.sh"
start_private_cluster intake-bench
BASE=$PG_BENCH_BASE

# CPU seconds the cluster has used so far: its live processes plus the
# backends that have exited (reaped by the postmaster).
pg_cpu() {
  local pm total=0 u s cu cs
  pm=$(head -1 "$PG_BENCH_DIR/data/postmaster.pid")
  read -r u s cu cs < <(awk '{print $14, $15, $16, $17}' "/proc/$pm/stat")
  total=$((u + s + cu + cs))
  for c in $(cat /proc/"$pm"/task/*/children); do
    if read -r u s < <(awk '{print $14, $15}' "/proc/$c/stat" 2>/dev/null); then total=$((total + u + s)); fi
  done
  echo "scale=2; $total / $(getconf CLK_TCK)" | bc
}
# Waits (up to 10 s) until the benchmark's connections are gone, so that
# their backends' CPU has been added to the postmaster's children's total.
pg_quiet() {
  for _ in $(seq 100); do
    [ "$(psql -X -At "$BASE/postgres" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")" = 0 ] && return 0
    sleep 0.1
  done
  echo "warning: connections still open; CPU figures may be low" >&2
}
# After a run: PostgreSQL's CPU per call, from the RESULT line's ok= count.
pg_cpu_per_call() {  # cpu_before result_line
  local used ok
  pg_quiet
  used=$(echo "$(pg_cpu) - $1" | bc)
  ok=$(echo "$2" | grep -Eo ' ok=[0-9]+' | cut -d= -f2)
  echo "CPU postgres seconds=$used per_call_us=$(echo "$used * 1000000 / $ok" | bc)"
}

echo "== pgbench baseline"
cpu0=$(pg_cpu)
base=$(bash "$ROOT/tests/bench/pgbench/run.sh" --url "$BASE/postgres" | grep -E "^(server settings|machine|BASELINE)")
echo "$base"
rows=$(echo "$base" | grep -Eo '[0-9]+ rows' | cut -d' ' -f1)
pg_quiet
used=$(echo "$(pg_cpu) - $cpu0" | bc)
echo "CPU postgres seconds=$used per_insert_us=$(echo "$used * 1000000 / $rows" | bc)"

fresh_db() { psql -X -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; echo "$BASE/$1"; }

echo "== SubmitApplication (clients and service in one process)"
cpu0=$(pg_cpu)
out=$("$BENCH" --db_url="$(fresh_db submit)" --mode=submit --clients="$CLIENTS" --seconds="$SECONDS_SUBMIT" --pool="$POOL" $BATCHING 2>/dev/null | grep -E "^(RESULT|CPU|BATCH)")
echo "$out"
pg_cpu_per_call "$cpu0" "$out"

echo "== SubmitApplication (clients in a second process: CPU per call of each)"
serve_db=$(fresh_db submit2)
coproc SERVE { "$BENCH" --db_url="$serve_db" --mode=serve --pool="$POOL" $BATCHING 2>/dev/null; }
# Own copies of the coprocess's pipes: bash drops SERVE when it exits.
exec {serve_out}<&"${SERVE[0]}" {serve_in}>&"${SERVE[1]}"
read -r _ port <&"$serve_out"
cpu0=$(pg_cpu)
out=$("$BENCH" --target="127.0.0.1:$port" --mode=submit --clients="$CLIENTS" --seconds="$SECONDS_SUBMIT" 2>/dev/null | grep -E "^(RESULT|CPU)")
exec {serve_in}>&- {SERVE[1]}>&-
serve_tail=$(cat <&"$serve_out")
serve_cpu=$(echo "$serve_tail" | grep -E '^CPU' | grep -Eo 'seconds=[0-9.]+' | cut -d= -f2)
exec {serve_out}<&-
wait
echo "$out"
echo "$serve_tail" | grep -E '^BATCH' || true
echo "CPU service seconds=$serve_cpu per_call_us=$(echo "$serve_cpu * 1000000 / $(echo "$out" | grep -Eo ' ok=[0-9]+' | cut -d= -f2)" | bc)"
pg_cpu_per_call "$cpu0" "$out"
echo "== import fixture"
"$BENCH" --db_url="$(fresh_db fixture)" --mode=import --file="$FIXTURES/forum_cases_2024.csv" 2>/dev/null | grep RESULT
echo "== import synthetic"
"$BENCH" --db_url="$(fresh_db synthetic)" --mode=import --synthetic_rows="$ROWS" 2>/dev/null | grep RESULT
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
