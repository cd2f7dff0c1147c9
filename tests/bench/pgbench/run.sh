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

AS=()
cleanup() { :; }
if [ -z "$URL" ]; then
  DIR=$(mktemp -d /tmp/medkoord-pgbench.XXXXXX)
  chmod 755 "$DIR"
  if [ "$(id -u)" -eq 0 ]; then
    user=postgres
    id postgres >/dev/null 2>&1 || user=nobody
    chown "$user" "$DIR"
    AS=(runuser -u "$user" --)
  fi
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cleanup() {
    "${AS[@]}" "$PGBIN/pg_ctl" stop -D "$DIR/data" -m fast -w >/dev/null 2>&1 || true
    rm -rf "$DIR"
  }
  trap cleanup EXIT
  "${AS[@]}" "$PGBIN/initdb" -D "$DIR/data" -U bench --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  # Durable commits, as in production: fsync, synchronous_commit and
  # full_page_writes at their defaults (on).
  "${AS[@]}" "$PGBIN/pg_ctl" start -D "$DIR/data" -w -l "$DIR/postgres.log" \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=on -c synchronous_commit=on" >/dev/null
  URL="postgresql://bench@127.0.0.1:$PORT/postgres"
fi

psql -X -q -v ON_ERROR_STOP=1 "$URL" <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_rows;
CREATE TABLE bench_rows (id bigserial PRIMARY KEY, note text NOT NULL, created_at timestamptz NOT NULL);
SQL
settings=$(psql -X -At "$URL" -c "SELECT string_agg(name || '=' || setting, ' ') FROM pg_settings WHERE name IN ('fsync','synchronous_commit','full_page_writes','wal_sync_method') ")
echo "server settings: $settings"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load before: $(cut -d' ' -f1-3 /proc/loadavg)"

"$PGBIN/pgbench" -n -c "$CLIENTS" -j "$THREADS" -T "$DURATION" -f "$HERE/insert_one.sql" "$URL" | tee /tmp/medkoord-pgbench.out
rows=$(psql -X -At "$URL" -c "SELECT count(*) FROM bench_rows")
psql -X -q "$URL" -c "DROP TABLE bench_rows"
tps=$(grep -Eo 'tps = [0-9.]+' /tmp/medkoord-pgbench.out | head -1 | cut -d' ' -f3)
lat=$(grep -Eo 'latency average = [0-9.]+ ms' /tmp/medkoord-pgbench.out | head -1)
echo "BASELINE pgbench insert_one: ${tps} tps, ${lat}, ${rows} rows, c=$CLIENTS j=$THREADS T=${DURATION}s, $(date -u +%Y-%m-%dT%H:%MZ)"
