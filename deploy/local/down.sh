#!/usr/bin/env bash
# Stops what deploy/local/up.sh started: the services named by its pid files
# (SIGTERM, graceful; SIGKILL after 30 s) and its PostgreSQL cluster. Nothing
# else. Data, keys and certificates stay in deploy/local/run/ for the next
# up.sh; `bash deploy/local/down.sh --purge` removes them too.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/deploy/local/common.sh"

if [ ! -d "$RUN" ]; then
  echo "medkoord: nothing to stop (no $RUN)"
  exit 0
fi

# The gateway first, so no new calls reach the services while they drain.
for svc in gateway rwd shortage assessment intake; do
  pidfile="$RUN/pids/$svc.pid"
  [ -e "$pidfile" ] || continue
  if service_running "$svc"; then
    pid=$(cat "$pidfile")
    echo "medkoord: stopping $svc (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "medkoord: $svc did not stop within 30 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
done

resolve_pg_user
if [ -d "$PGDATA" ] && pg_running; then
  echo "medkoord: stopping PostgreSQL"
  as_pg "$PGBIN/pg_ctl" stop -D "$PGDATA" -m fast -w >/dev/null
fi

if [ "${1:-}" = "--purge" ]; then
  echo "medkoord: removing $RUN and .medkoord/local.env"
  if [ -L "$PGROOT" ]; then rm -rf "$(readlink -f "$PGROOT")"; fi
  rm -rf "$RUN" "$ROOT/.medkoord/local.env"
fi
echo "medkoord: stopped"
