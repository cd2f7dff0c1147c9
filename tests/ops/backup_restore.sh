#!/usr/bin/env bash
# Backs up every service database of a running local suite with pg_dump,
# restores each into a fresh private PostgreSQL cluster with pg_restore, and
# compares the row count of every table. The counts on the source side are
# taken inside the very snapshot pg_dump copies (pg_export_snapshot), so the
# comparison is exact even while the suite keeps writing.
#
#   tests/ops/backup_restore.sh            # the local suite (deploy/local/up.sh)
#
# Source connection (defaults: the local suite):
#   MEDKOORD_PG_HOST (127.0.0.1)  MEDKOORD_PG_PORT (55432)
#   MEDKOORD_PGPASSFILE (deploy/local/run/secrets/pgpass)
#   MEDKOORD_BACKUP_USER: one role for every database (default: each
#     service's own role, which owns everything in its database)
#   MEDKOORD_BACKUP_DIR: keep the dumps there (default: a temporary folder)
#   MEDKOORD_BACKUP_URLS: "intake=postgresql://… assessment=postgresql://… …"
#     instead of all of the above: each service's database by connection URL
#     (tests/e2e/ops runs the script this way against an e2e suite)
#
# Exit 0 when every database was dumped, restored and all counts match; 1
# otherwise. CI runs it against an e2e suite loaded with the demo data
# (tests/e2e/ops, BackupRestoreTest).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGBIN=${MEDKOORD_PGBIN:-/usr/lib/postgresql/15/bin}
SRC_HOST=${MEDKOORD_PG_HOST:-127.0.0.1}
SRC_PORT=${MEDKOORD_PG_PORT:-55432}
export PGPASSFILE=${MEDKOORD_PGPASSFILE:-$ROOT/deploy/local/run/secrets/pgpass}
DATABASES=(intake assessment shortage rwd gateway)
declare -A SRC_URL=()
if [[ -n "${MEDKOORD_BACKUP_URLS:-}" ]]; then
  DATABASES=()
  for pair in $MEDKOORD_BACKUP_URLS; do
    [[ "$pair" == *=* ]] || { echo "backup_restore: MEDKOORD_BACKUP_URLS: '$pair' is not name=url" >&2; exit 2; }
    DATABASES+=("${pair%%=*}")
    SRC_URL[${pair%%=*}]=${pair#*=}
  done
fi

# The fresh cluster: initdb refuses root, so as root it runs as `postgres`
# (or `nobody`), in a folder that user can reach.
PG_AS=""
if [[ $(id -u) -eq 0 ]]; then
  if id postgres >/dev/null 2>&1; then PG_AS=postgres; else PG_AS=nobody; fi
fi
as_pg() { if [[ -n "$PG_AS" ]]; then runuser -u "$PG_AS" -- "$@"; else "$@"; fi; }

WORK=$(mktemp -d /var/tmp/medkoord-restore.XXXXXX)
chmod 755 "$WORK"
DUMPS=${MEDKOORD_BACKUP_DIR:-$WORK/dumps}
mkdir -p "$DUMPS" "$WORK/sock"
[[ -n "$PG_AS" ]] && chown "$PG_AS" "$WORK" "$WORK/sock"
DST_DATA="$WORK/data"
# A Unix socket only (listen_addresses=''), so the port number cannot clash.
DST_PORT=$((56000 + RANDOM % 4000))

cleanup() {
  if [[ -s "$DST_DATA/postmaster.pid" ]]; then
    as_pg "$PGBIN/pg_ctl" stop -D "$DST_DATA" -m immediate >/dev/null 2>&1 || true
  fi
  if [[ -z "${MEDKOORD_BACKUP_DIR:-}" || "$DUMPS" != "$WORK"/* ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "backup_restore: fresh cluster in $WORK (user ${PG_AS:-$(id -un)})"
as_pg "$PGBIN/initdb" -D "$DST_DATA" -U restore_admin --auth=trust -E UTF8 --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 ||
  { cat "$WORK/initdb.log"; exit 1; }
as_pg "$PGBIN/pg_ctl" start -D "$DST_DATA" -w -t 60 -l "$WORK/postgres.log" \
  -o "-p $DST_PORT -k $WORK/sock -c listen_addresses=''" >/dev/null ||
  { tail -20 "$WORK/postgres.log"; exit 1; }
dst_psql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK/sock" -p "$DST_PORT" -U restore_admin "$@"; }

# Row count of every table, one "schema.table count" per line.
COUNT_SQL="SELECT t || ' ' || (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %s', t), false, true, '')))[1]::text
FROM (SELECT format('%I.%I', table_schema, table_name) AS t FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')) tables
ORDER BY t;"

status=0
compared=0
for db in "${DATABASES[@]}"; do
  if [[ -n "${SRC_URL[$db]:-}" ]]; then
    src=(-d "${SRC_URL[$db]}")
    where="${SRC_URL[$db]}"
  else
    user=${MEDKOORD_BACKUP_USER:-$db}
    src=(-h "$SRC_HOST" -p "$SRC_PORT" -U "$user" -d "$db")
    where="$SRC_HOST:$SRC_PORT as $user"
  fi
  if ! "$PGBIN/psql" -X -qAt "${src[@]}" -c "SELECT 1" >/dev/null 2>&1; then
    echo "backup_restore: $db: cannot connect to $where; skipped"
    status=1
    continue
  fi

  # One repeatable-read transaction holds the snapshot: counts, then pg_dump
  # with --snapshot, then COMMIT.
  coproc SNAP { "$PGBIN/psql" -X -qAt -v ON_ERROR_STOP=1 "${src[@]}"; }
  echo "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;" >&"${SNAP[1]}"
  echo "SELECT pg_export_snapshot();" >&"${SNAP[1]}"
  read -r snapshot <&"${SNAP[0]}"
  printf '%s\n\\echo __end__\n' "$COUNT_SQL" >&"${SNAP[1]}"
  : >"$WORK/$db.source"
  while read -r line <&"${SNAP[0]}" && [[ "$line" != "__end__" ]]; do echo "$line" >>"$WORK/$db.source"; done
  dump="$DUMPS/$db.dump"
  "$PGBIN/pg_dump" --format=custom --no-owner --snapshot="$snapshot" "${src[@]}" --file="$dump"
  echo "COMMIT;" >&"${SNAP[1]}"
  exec {SNAP[1]}>&-
  wait "$SNAP_PID" || true

  dst_psql -d postgres -c "CREATE ROLE \"$db\" LOGIN" -c "CREATE DATABASE \"$db\" OWNER \"$db\""
  "$PGBIN/pg_restore" --exit-on-error --no-owner --role="$db" -h "$WORK/sock" -p "$DST_PORT" -U restore_admin -d "$db" "$dump"
  dst_psql -d "$db" -At -c "$COUNT_SQL" >"$WORK/$db.restored"

  tables=$(wc -l <"$WORK/$db.source")
  rows=$(awk '{s += $NF} END {print s + 0}' "$WORK/$db.source")
  if diff -u "$WORK/$db.source" "$WORK/$db.restored" >"$WORK/$db.diff"; then
    printf 'backup_restore: %-11s ok: %3d tables, %8d rows, dump %s bytes\n' "$db" "$tables" "$rows" "$(stat -c %s "$dump")"
    compared=$((compared + 1))
  else
    echo "backup_restore: $db: row counts differ after restore (source -, restored +):"
    sed 1,2d "$WORK/$db.diff" | grep '^[-+]' | sed 's/^/    /'
    status=1
  fi
done
echo "backup_restore: $compared of ${#DATABASES[@]} databases restored with equal row counts"
exit $status
