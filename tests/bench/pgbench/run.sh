#!/usr/bin/env bash
# pgbench baseline (docs/BENCHMARKS.md): 32 clients, 2 threads, 30 s of
# one-row inserts into (bigserial, text, timestamptz) with durable commits.
#
#   bash tests/bench/pgbench/run.sh                 a private cluster, durable
#                                                   settings (fsync, synchronous_commit on)
#   bash tests/bench/pgbench/run.sh --url URL       an existing server (e.g. the
#                                                   deploy/local cluster); creates
#                                                   and drops table bench_rows
#   DURATION=30 CLIENTS=32 THREADS=2                overrides
#
# Not part of tests/run.sh. Prints pgbench's report and one summary line.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGBIN=/usr/lib/postgresql/15/bin
DURATION=${DURATION:-30}
CLIENTS=${CLIENTS:-32}
THREADS=${THREADS:-2}
URL=""
if [ "${1:-}" = "--url" ]; then URL=$2; fi

if [ -z "$URL" ]; then
  source "$HERE/private_cluster.sh"
  start_private_cluster pgbench
  URL="$PG_BENCH_BASE/postgres"
fi

psql -X -q -v ON_ERROR_STOP=1 "$URL" <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_rows;
CREATE TABLE bench_rows (id bigserial PRIMARY KEY, note text NOT NULL, created_at timestamptz NOT NULL);
SQL
settings=$(psql -X -At "$URL" -c "SELECT string_agg(name || '=' || setting, ' ') FROM pg_settings WHERE name IN ('fsync','synchronous_commit','full_page_writes','wal_sync_method') ")
echo "server settings: $settings"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load before: $(cut -d' ' -f1-3 /proc/loadavg)"

OUT=$(mktemp /tmp/medkoord-pgbench-out.XXXXXX)
"$PGBIN/pgbench" -n -c "$CLIENTS" -j "$THREADS" -T "$DURATION" -f "$HERE/insert_one.sql" "$URL" | tee "$OUT"
rows=$(psql -X -At "$URL" -c "SELECT count(*) FROM bench_rows")
psql -X -q "$URL" -c "DROP TABLE bench_rows"
tps=$(grep -Eo 'tps = [0-9.]+' "$OUT" | head -1 | cut -d' ' -f3)
lat=$(grep -Eo 'latency average = [0-9.]+ ms' "$OUT" | head -1)
rm -f "$OUT"
echo "BASELINE pgbench insert_one: ${tps} tps, ${lat}, ${rows} rows, c=$CLIENTS j=$THREADS T=${DURATION}s, $(date -u +%Y-%m-%dT%H:%MZ)"
