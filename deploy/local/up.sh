#!/usr/bin/env bash
# Starts the local medkoord suite: bash deploy/local/up.sh
#
#  1. installs missing Debian packages, builds everything in build/;
#  2. creates (or reuses) a private PostgreSQL 15 cluster under
#     deploy/local/run/pg, run as an unprivileged user on 127.0.0.1:55432,
#     with one database and one role per service (password in run/secrets/);
#  3. generates the shared principal key, the pseudonymisation key and a local
#     CA + server certificate for the gateway (run/secrets, run/tls; once);
#  4. starts every service binary that exists (intake, assessment, shortage,
#     rwd, gateway), logs in run/logs/<svc>.log, pid files in run/pids/, and
#     waits until each answers grpc.health.v1.Health/Check with SERVING;
#  5. creates the demo API key (once) and writes .medkoord/local.env;
#  6. runs the demo-data loaders in deploy/local/demo.d/ in name order.
#
# Running it again while the suite runs changes nothing that is running: it
# reports what is up and starts only what is not. Stop: bash deploy/local/down.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/deploy/local/common.sh"

mkdir -p "$RUN" "$RUN/logs" "$RUN/pids" "$RUN/demo"
chmod 755 "$RUN"

# One up.sh at a time; a second one waits instead of racing the first. (What
# it starts must not inherit fd 9, or the lock would outlive it.)
exec 9>"$RUN/up.lock"
if ! flock -n 9; then
  echo "medkoord: another deploy/local/up.sh is running; waiting for it..."
  flock 9
fi

# ---------------------------------------------------------------- 1. build
bash "$ROOT/deploy/local/install-packages.sh"
if [ "${MEDKOORD_NO_BUILD:-}" != 1 ]; then  # 1: use what is in $BUILD (development)
  echo "medkoord: building in $BUILD (first time: a while)"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j "${MEDKOORD_JOBS:-2}"
fi
HEALTHCHECK="$BUILD/tools/healthcheck/medkoord-healthcheck"

# ------------------------------------------------------ 3. secrets and TLS
mkdir -p "$SECRETS" "$TLS"
chmod 700 "$SECRETS"
new_secret() {  # file, bytes
  if [ ! -s "$1" ]; then
    (umask 077 && openssl rand -hex "$2" >"$1")
  fi
  chmod 600 "$1"
}
new_secret "$SECRETS/principal.key" 32
new_secret "$SECRETS/pseudonym.key" 32
for svc in "${DB_SERVICES[@]}"; do new_secret "$SECRETS/db_$svc.password" 24; done

if [ ! -s "$TLS/server.pem" ]; then
  echo "medkoord: making a local CA and the gateway's server certificate"
  (
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=medkoord local CA" \
      -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$TLS/server.ext"
    openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial \
      -days 825 -extfile "$TLS/server.ext" -out "$TLS/server.pem" 2>/dev/null
    rm -f "$TLS/server.csr" "$TLS/server.ext"
  )
  chmod 644 "$TLS/ca.pem" "$TLS/server.pem"
fi

# libpq reads the service passwords from here, so they are in no URL or
# process environment.
(
  umask 077
  : >"$SECRETS/pgpass.tmp"
  for svc in "${DB_SERVICES[@]}"; do
    echo "127.0.0.1:$PGPORT:$svc:$svc:$(cat "$SECRETS/db_$svc.password")" >>"$SECRETS/pgpass.tmp"
  done
  mv "$SECRETS/pgpass.tmp" "$SECRETS/pgpass"
)

# -------------------------------------------------------- 2. PostgreSQL
resolve_pg_user
if [ ! -e "$PGROOT" ]; then
  if [ -n "$PG_AS" ] && ! as_pg test -x "$RUN"; then
    # The checkout is not reachable for the unprivileged user (e.g. under
    # /root): keep the cluster outside it, linked from run/pg.
    outside=$(mktemp -d /var/tmp/medkoord-local-pg.XXXXXX)
    chmod 755 "$outside"
    ln -s "$outside" "$PGROOT"
    echo "medkoord: $RUN is not reachable by user $PG_AS; cluster kept in $outside (linked from run/pg)"
  else
    mkdir -p "$PGROOT"
  fi
fi
if [ -n "$PG_AS" ]; then chown "$PG_AS" "$(readlink -f "$PGROOT")"; fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "medkoord: creating the PostgreSQL cluster in $PGDATA (user ${PG_AS:-$(id -un)})"
  as_pg mkdir -p "$PGSOCK"
  as_pg "$PGBIN/initdb" -D "$PGDATA" -U "$PGADMIN" --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$RUN/logs/initdb.log" 2>&1 ||
    { cat "$RUN/logs/initdb.log"; exit 1; }
fi
if pg_running; then
  echo "medkoord: PostgreSQL already running on 127.0.0.1:$PGPORT"
else
  echo "medkoord: starting PostgreSQL on 127.0.0.1:$PGPORT"
  # Durable, as in production: fsync and synchronous_commit stay on.
  as_pg "$PGBIN/pg_ctl" start -D "$PGDATA" -w -t 60 -l "$PGLOG" \
    -o "-p $PGPORT -k $PGSOCK -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null 9>&- ||
    { tail -20 "$PGLOG"; exit 1; }
fi

# One database and one role per service; each role may connect to its own
# database only.
for svc in "${DB_SERVICES[@]}"; do
  pw=$(cat "$SECRETS/db_$svc.password")
  psql_admin -q -v ON_ERROR_STOP=1 -v svc="$svc" -v pw="$pw" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'svc') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'svc') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'svc', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'svc', :'svc') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'svc') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'svc') \gexec
SQL
done

# ------------------------------------------------------------ 4. services
declare -A STARTED
start_service() {  # svc
  local svc=$1 bin pidfile log
  bin=$(service_binary "$svc")
  pidfile="$RUN/pids/$svc.pid"
  log="$RUN/logs/$svc.log"
  if [ -z "$bin" ]; then
    echo "medkoord: $svc is not built (no $BUILD/services/$svc/$svc); skipped"
    return
  fi
  if service_running "$svc"; then
    echo "medkoord: $svc already running (pid $(cat "$pidfile"))"
    STARTED[$svc]=1
    return
  fi
  local -a env=(
    MEDKOORD_LISTEN="127.0.0.1:${GRPC_PORT[$svc]}"
    MEDKOORD_DB_URL="$(db_url "$svc")"
    MEDKOORD_PRINCIPAL_KEY_FILE="$SECRETS/principal.key"
    MEDKOORD_LOG_LEVEL=info
  )
  case $svc in
    intake) env+=(MEDKOORD_METRICS_LISTEN="127.0.0.1:${HTTP_PORT[$svc]}"
                  MEDKOORD_ASSESSMENT_ADDR="127.0.0.1:${GRPC_PORT[assessment]}") ;;
    assessment) env+=(MEDKOORD_METRICS_LISTEN="127.0.0.1:${HTTP_PORT[$svc]}"
                      MEDKOORD_INTAKE_ADDR="127.0.0.1:${GRPC_PORT[intake]}") ;;
    shortage) env+=(MEDKOORD_METRICS_LISTEN="127.0.0.1:${HTTP_PORT[$svc]}") ;;
    rwd) env+=(MEDKOORD_METRICS_LISTEN="127.0.0.1:${HTTP_PORT[$svc]}"
               MEDKOORD_PSEUDONYM_KEY_FILE="$SECRETS/pseudonym.key") ;;
    gateway) env+=(MEDKOORD_HTTP_LISTEN="127.0.0.1:${HTTP_PORT[$svc]}"
                   MEDKOORD_HTTPS_LISTEN="127.0.0.1:$GATEWAY_HTTPS_PORT"
                   MEDKOORD_TLS_CERT_FILE="$TLS/server.pem"
                   MEDKOORD_TLS_KEY_FILE="$TLS/server.key"
                   MEDKOORD_INTAKE_ADDR="127.0.0.1:${GRPC_PORT[intake]}"
                   MEDKOORD_ASSESSMENT_ADDR="127.0.0.1:${GRPC_PORT[assessment]}"
                   MEDKOORD_SHORTAGE_ADDR="127.0.0.1:${GRPC_PORT[shortage]}"
                   MEDKOORD_RWD_ADDR="127.0.0.1:${GRPC_PORT[rwd]}") ;;
  esac
  echo "medkoord: starting $svc on 127.0.0.1:${GRPC_PORT[$svc]}"
  # setsid: the services outlive this script and a ^C in its terminal.
  env "${env[@]}" PGPASSFILE="$SECRETS/pgpass" setsid "$bin" >>"$log" 2>&1 </dev/null 9>&- &
  echo $! >"$pidfile"
  STARTED[$svc]=1
}

wait_serving() {  # svc
  local svc=$1
  local -a tls=()
  if [ "$svc" = gateway ]; then tls=(--tls --ca-file "$TLS/ca.pem"); fi
  if ! "$HEALTHCHECK" --addr "127.0.0.1:${GRPC_PORT[$svc]}" "${tls[@]}" --timeout 90s >/dev/null; then
    echo "medkoord: $svc did not become SERVING; last lines of $RUN/logs/$svc.log:" >&2
    tail -20 "$RUN/logs/$svc.log" >&2 || true
    exit 1
  fi
  echo "medkoord: $svc SERVING"
}

for svc in intake assessment shortage rwd; do start_service "$svc"; done
for svc in intake assessment shortage rwd; do
  if [ -n "${STARTED[$svc]:-}" ]; then wait_serving "$svc"; fi
done
start_service gateway
if [ -n "${STARTED[gateway]:-}" ]; then wait_serving gateway; fi

# ------------------------------------------------- 5. demo key, local.env
API_KEY=""
if [ -n "${STARTED[gateway]:-}" ]; then
  if [ ! -s "$SECRETS/demo_api_key" ]; then
    key=$(env MEDKOORD_DB_URL="$(db_url gateway)" PGPASSFILE="$SECRETS/pgpass" \
      "$(service_binary gateway)" --create_api_key=demo \
      --roles=forum_secretariat,task_force,analyst,admin --display_name="Local demo" 2>>"$RUN/logs/gateway.log" |
      tail -1) || key=""
    if [ -n "$key" ]; then
      (umask 077 && echo "$key" >"$SECRETS/demo_api_key")
    else
      echo "medkoord: could not create the demo API key (see $RUN/logs/gateway.log)" >&2
    fi
  fi
  if [ -s "$SECRETS/demo_api_key" ]; then API_KEY=$(cat "$SECRETS/demo_api_key"); fi
fi
mkdir -p "$ROOT/.medkoord"
(
  umask 077
  {
    echo "MEDKOORD_ADDR=127.0.0.1:${GRPC_PORT[gateway]}"
    echo "MEDKOORD_CA_FILE=$TLS/ca.pem"
    echo "MEDKOORD_API_KEY=$API_KEY"
  } >"$ROOT/.medkoord/local.env"
)

# ----------------------------------------------------------- 6. demo data
export MEDKOORD_ADDR="127.0.0.1:${GRPC_PORT[gateway]}" MEDKOORD_CA_FILE="$TLS/ca.pem"
export MEDKOORD_API_KEY="$API_KEY" MEDKOORD_REPO_ROOT="$ROOT" MEDKOORD_BUILD_DIR="$BUILD"
export MEDKOORD_CLI="$BUILD/tools/medkoord/medkoord"
export MEDKOORD_PRINCIPAL_KEY_FILE="$SECRETS/principal.key"
for svc in intake assessment shortage rwd; do
  export "MEDKOORD_${svc^^}_ADDR=127.0.0.1:${GRPC_PORT[$svc]}"
done
if [ -d "$ROOT/deploy/local/demo.d" ]; then
  for loader in "$ROOT"/deploy/local/demo.d/*; do
    [ -f "$loader" ] && [ -x "$loader" ] || continue
    name=$(basename "$loader")
    # Each loader runs once per cluster: the data stays in it across restarts.
    if [ -e "$RUN/demo/$name.done" ]; then continue; fi
    echo "medkoord: loading demo data: $name"
    if "$loader" >>"$RUN/logs/demo.log" 2>&1 </dev/null; then
      touch "$RUN/demo/$name.done"
    else
      echo "medkoord: demo loader $name failed; see $RUN/logs/demo.log" >&2
    fi
  done
fi

# ---------------------------------------------------------------- summary
echo
echo "medkoord local suite is up."
printf '  %-11s %-22s %-22s %s\n' service gRPC http/metrics log
for svc in gateway intake assessment shortage rwd; do
  if [ -n "${STARTED[$svc]:-}" ]; then
    printf '  %-11s %-22s %-22s %s\n' "$svc" "127.0.0.1:${GRPC_PORT[$svc]}" "127.0.0.1:${HTTP_PORT[$svc]}" \
      "$RUN/logs/$svc.log"
  else
    printf '  %-11s (not built)\n' "$svc"
  fi
done
printf '  %-11s %-22s %-22s %s\n' postgresql "127.0.0.1:$PGPORT" "-" "$PGLOG"
echo
echo "  gateway TLS CA:   $TLS/ca.pem"
echo "  report page:      https://127.0.0.1:$GATEWAY_HTTPS_PORT/reports/annual?year=2024 (user any, password: the API key; trust the CA above)"
if [ -n "$API_KEY" ]; then echo "  demo API key:     $SECRETS/demo_api_key (environment in .medkoord/local.env)"; fi
echo "  client settings:  source .medkoord/local.env"
echo "  CLI:              $BUILD/tools/medkoord/medkoord (e.g. report annual --year 2024; reads .medkoord/local.env itself)"
echo "  stop:             bash deploy/local/down.sh"
