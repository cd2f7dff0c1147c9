# Sourced by run.sh and compare.sh: measuring helpers for the submit
# benchmark against the private cluster of tests/bench/pgbench/private_cluster.sh
# (start_private_cluster must have run: PG_BENCH_DIR, PG_BENCH_BASE).

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
    [ "$(psql -X -At "$PG_BENCH_BASE/postgres" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")" = 0 ] && return 0
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

# A fresh empty database; prints its URL.
fresh_db() {
  psql -X -q "$PG_BENCH_BASE/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  echo "$PG_BENCH_BASE/$1"
}

# The pgbench baseline on the private cluster, with PostgreSQL's CPU per
# insert; sets BASELINE_TPS.
pgbench_baseline() {
  local cpu0 base rows used
  cpu0=$(pg_cpu)
  base=$(bash "$ROOT/tests/bench/pgbench/run.sh" --url "$PG_BENCH_BASE/postgres" | grep -E "^(server settings|machine|BASELINE)")
  echo "$base"
  rows=$(echo "$base" | grep -Eo '[0-9]+ rows' | cut -d' ' -f1)
  BASELINE_TPS=$(echo "$base" | grep -Eo '[0-9.]+ tps' | cut -d' ' -f1)
  pg_quiet
  used=$(echo "$(pg_cpu) - $cpu0" | bc)
  echo "CPU postgres seconds=$used per_insert_us=$(echo "$used * 1000000 / $rows" | bc)"
}

# SubmitApplication with the clients in a second process, so that the CPU
# per call of the clients, the service and PostgreSQL can be told apart.
#   submit_apart BENCH DB SECONDS "service flags" "client flags"
# Prints the RESULT, CPU and BATCH lines (and the ratio when BASELINE_TPS
# is set); the service's threads by name go to stderr when SHOW_THREADS=1, and
# PERF_OUT=file records a perf profile of the service.
submit_apart() {
  local bench=$1 db=$2 seconds=$3 serve_flags=$4 client_flags=$5 port cpu0 out serve_tail serve_cpu ok serve_pid
  coproc SERVE { exec "$bench" --db_url="$db" --mode=serve $serve_flags 2>/dev/null; }
  serve_pid=$SERVE_PID
  # Own copies of the coprocess's pipes: bash drops SERVE when it exits.
  exec {serve_out}<&"${SERVE[0]}" {serve_in}>&"${SERVE[1]}"
  read -r _ port <&"$serve_out"
  if [ "${SHOW_THREADS:-0}" = 1 ]; then
    (sleep $((seconds / 2)); echo "service threads mid-run: $(ls /proc/$serve_pid/task | wc -l):" \
      "$(cat /proc/$serve_pid/task/*/comm | sort | uniq -c | tr -s ' \n' ' ')" >&2) &
  fi
  if [ -n "${PERF_OUT:-}" ]; then  # a profile of the service during the run
    perf record -F 499 -g -o "$PERF_OUT" -p "$serve_pid" -- sleep $((seconds - 2)) >/dev/null 2>&1 &
  fi
  cpu0=$(pg_cpu)
  out=$("$bench" --target="127.0.0.1:$port" --mode=submit --seconds="$seconds" $client_flags 2>/dev/null | grep -E "^(RESULT|CPU)")
  exec {serve_in}>&- {SERVE[1]}>&-
  serve_tail=$(cat <&"$serve_out")
  serve_cpu=$(echo "$serve_tail" | grep -E '^CPU' | grep -Eo 'seconds=[0-9.]+' | cut -d= -f2)
  exec {serve_out}<&-
  wait "$serve_pid" || true
  echo "$out"
  echo "$serve_tail" | grep -E '^BATCH' || true
  ok=$(echo "$out" | grep -Eo ' ok=[0-9]+' | cut -d= -f2)
  echo "CPU service seconds=$serve_cpu per_call_us=$(echo "$serve_cpu * 1000000 / $ok" | bc)"
  pg_cpu_per_call "$cpu0" "$out"
  if [ -n "${BASELINE_TPS:-}" ]; then
    echo "RATIO $(echo "$out" | grep -Eo 'throughput=[0-9]+' | cut -d= -f2) / $BASELINE_TPS = $(echo "scale=3; $(echo "$out" | grep -Eo 'throughput=[0-9]+' | cut -d= -f2) / $BASELINE_TPS" | bc)"
  fi
}
