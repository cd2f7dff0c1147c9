# Sourced by benchmark scripts: start_private_cluster starts a throw-away
# PostgreSQL 15 cluster with production durability (fsync, synchronous_commit
# and full_page_writes on), as an unprivileged user when run as root, on a
# free port; sets PG_BENCH_BASE (postgresql://bench@127.0.0.1:<port>, append
# /<db>) and removes it all on exit (EXIT trap).
#
#   source tests/bench/pgbench/private_cluster.sh
#   start_private_cluster [name]
#   psql "$PG_BENCH_BASE/postgres" ...
#   PG_BENCH_SETTINGS="-c max_wal_size=4GB"  more server settings
#   PG_BENCH_LOG=/tmp/pg.log                 keep the server log (checkpoints)

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

start_private_cluster() {
  local name=${1:-bench}
  PG_BENCH_DIR=$(mktemp -d "/tmp/medkoord-$name.XXXXXX")
  chmod 755 "$PG_BENCH_DIR"
  PG_BENCH_AS=()
  if [ "$(id -u)" -eq 0 ]; then
    local user=postgres
    id postgres >/dev/null 2>&1 || user=nobody
    chown "$user" "$PG_BENCH_DIR"
    PG_BENCH_AS=(runuser -u "$user" --)
  fi
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  trap stop_private_cluster EXIT
  "${PG_BENCH_AS[@]}" "$PGBIN/initdb" -D "$PG_BENCH_DIR/data" -U bench --auth=trust -E UTF8 \
    --locale=C.UTF-8 >/dev/null
  "${PG_BENCH_AS[@]}" "$PGBIN/pg_ctl" start -D "$PG_BENCH_DIR/data" -w -l "$PG_BENCH_DIR/postgres.log" \
    -o "-p $port -k $PG_BENCH_DIR -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c log_checkpoints=on ${PG_BENCH_SETTINGS:-}" >/dev/null
  PG_BENCH_BASE="postgresql://bench@127.0.0.1:$port"
}

stop_private_cluster() {
  [ -n "${PG_BENCH_DIR:-}" ] || return 0
  "${PG_BENCH_AS[@]}" "$PGBIN/pg_ctl" stop -D "$PG_BENCH_DIR/data" -m fast -w >/dev/null 2>&1 || true
  if [ -n "${PG_BENCH_LOG:-}" ]; then cp "$PG_BENCH_DIR/postgres.log" "$PG_BENCH_LOG"; fi
  rm -rf "$PG_BENCH_DIR"
  PG_BENCH_DIR=""
}
