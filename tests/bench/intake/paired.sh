#!/usr/bin/env bash
# The SubmitApplication target (docs/BENCHMARKS.md, "Intake": throughput at
# least 0.5 x the pgbench single-row insert baseline) measured in pairs, so
# that drift of this shared machine does not bias the ratio: ROUNDS times a
# pgbench baseline and then SubmitApplication (clients in a second process),
# SECONDS each, on one private durable cluster, and a last baseline. Each
# round's ratio divides its throughput by the mean of the baselines just
# before and just after it; the script prints every round and the median
# and range of the ratios.
#
#   bash tests/bench/intake/paired.sh BUILD_DIR ['service flags | client flags']
#   ROUNDS=6 SECONDS_PAIR=10 CLIENTS=32 POOL=16   overrides
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${1:?build dir}
SPEC=${2:-|}
ROUNDS=${ROUNDS:-6}
SECONDS_PAIR=${SECONDS_PAIR:-10}
BENCH=$BUILD/tests/bench/intake/intake_bench
[ -x "$BENCH" ] || { echo "build intake_bench first: cmake --build $BUILD --target intake_bench" >&2; exit 2; }
SERVE_FLAGS="--pool=${POOL:-16} ${SPEC%%|*}"
CLIENT_FLAGS="--clients=${CLIENTS:-32}"
[[ $SPEC == *"|"* ]] && CLIENT_FLAGS="$CLIENT_FLAGS ${SPEC#*|}"

source "$ROOT/tests/bench/pgbench/private_cluster.sh"
start_private_cluster intake-paired
source "$ROOT/tests/bench/intake/lib.sh"

echo "== paired rounds: $ROUNDS x (pgbench ${SECONDS_PAIR}s, SubmitApplication ${SECONDS_PAIR}s), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
baselines=() submits=()
for round in $(seq "$ROUNDS"); do
  DURATION=$SECONDS_PAIR pgbench_baseline >/dev/null
  baselines+=("$BASELINE_TPS")
  out=$(BASELINE_TPS="" submit_apart "$BENCH" "$(fresh_db "paired_$round")" "$SECONDS_PAIR" "$SERVE_FLAGS" "$CLIENT_FLAGS")
  tps=$(echo "$out" | grep -Eo 'throughput=[0-9]+' | cut -d= -f2)
  submits+=("$tps")
  echo "round $round: pgbench $BASELINE_TPS tps; $(echo "$out" | grep -E '^RESULT' | grep -Eo 'throughput=.*'); $(echo "$out" | grep -E '^BATCH' | grep -Eo 'mean=[0-9.]+'); CPU us/call $(echo "$out" | grep -E '^CPU' | sed -E 's/CPU ([a-z]+) .*per_call_us=([0-9]+)/\1 \2/' | tr '\n' ' ')"
done
DURATION=$SECONDS_PAIR pgbench_baseline >/dev/null
baselines+=("$BASELINE_TPS")
# Each round's ratio against the mean of its neighbouring baselines; median.
ratios=()
for i in "${!submits[@]}"; do
  ratios+=("$(awk -v s="${submits[$i]}" -v a="${baselines[$i]}" -v b="${baselines[$((i + 1))]}" 'BEGIN { printf "%.3f", s / ((a + b) / 2) }')")
done
echo "ratios: ${ratios[*]}"
printf '%s\n' "${ratios[@]}" | sort -n | awk -v base="${baselines[*]}" '
  { r[NR] = $1; if ($1 >= 0.5) met++ }
  END {
    median = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
    n = split(base, b, " "); lo = b[1]; hi = b[1]
    for (i = 2; i <= n; i++) { if (b[i] < lo) lo = b[i]; if (b[i] > hi) hi = b[i] }
    printf "PAIRED RATIO median %.3f [%.3f-%.3f] over %d rounds; pgbench %.0f-%.0f tps; rounds at or above 0.5: %d of %d\n",
      median, r[1], r[NR], NR, lo, hi, met + 0, NR
  }'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
