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
python3 - "${baselines[@]}" -- "${submits[@]}" <<'PY'
import statistics, sys
args = sys.argv[1:]
cut = args.index("--")
base = [float(x) for x in args[:cut]]
subs = [float(x) for x in args[cut + 1:]]
ratios = [s / ((base[i] + base[i + 1]) / 2) for i, s in enumerate(subs)]
print("ratios: " + " ".join(f"{r:.3f}" for r in ratios))
print(f"PAIRED RATIO median {statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}] "
      f"over {len(ratios)} rounds; pgbench {min(base):.0f}-{max(base):.0f} tps; "
      f"rounds at or above 0.5: {sum(r >= 0.5 for r in ratios)} of {len(ratios)}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
