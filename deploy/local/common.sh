# Shared by up.sh and down.sh (sourced; expects ROOT).
RUN="$ROOT/deploy/local/run"
BUILD="${MEDKOORD_BUILD_DIR:-$ROOT/build}"
SECRETS="$RUN/secrets"
TLS="$RUN/tls"
PGROOT="$RUN/pg"
PGDATA="$PGROOT/data"
PGSOCK="$PGROOT/sock"
PGLOG="$PGROOT/postgres.log"
PGBIN=/usr/lib/postgresql/15/bin
PGPORT="${MEDKOORD_PG_PORT:-55432}"
PGADMIN=medkoord_admin

# Every service has its own database and role, the gateway's included.
DB_SERVICES=(intake assessment shortage rwd gateway)
# docs/DEVELOPING.md, "Local ports".
declare -A GRPC_PORT=([gateway]=7443 [intake]=7101 [assessment]=7102 [shortage]=7103 [rwd]=7104)
declare -A HTTP_PORT=([gateway]=8443 [intake]=9101 [assessment]=9102 [shortage]=9103 [rwd]=9104)
# The gateway's report pages over HTTPS (its own TLS, the suite's certificate).
GATEWAY_HTTPS_PORT=8444

# initdb refuses root: as root the cluster runs as `postgres` (or `nobody`).
resolve_pg_user() {
  PG_AS=""
  if [ "$(id -u)" -eq 0 ]; then
    if id postgres >/dev/null 2>&1; then PG_AS=postgres; else PG_AS=nobody; fi
  fi
}

as_pg() {
  if [ -n "$PG_AS" ]; then
    runuser -u "$PG_AS" -- "$@"
  else
    "$@"
  fi
}

pg_running() {
  [ -s "$PGDATA/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1
}

psql_admin() {
  as_pg "$PGBIN/psql" -X -h "$PGSOCK" -p "$PGPORT" -U "$PGADMIN" -d postgres "$@"
}

db_url() {  # svc; the password comes from PGPASSFILE
  echo "postgresql://$1@127.0.0.1:$PGPORT/$1"
}

service_binary() {  # svc
  local bin="$BUILD/services/$1/$1"
  if [ -x "$bin" ]; then echo "$bin"; fi
}

# True if the pid file names a live process of that service (not a recycled
# pid of something else).
service_running() {  # svc
  local pidfile="$RUN/pids/$1.pid" pid argv0
  [ -s "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -r "/proc/$pid/cmdline" ] || return 1
  argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -1)
  [ "$(basename "$argv0")" = "$1" ]
}
