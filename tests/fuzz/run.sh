#!/usr/bin/env bash
# Builds (build.sh) and runs every libFuzzer target of tests/fuzz for N
# seconds on its committed seed corpus (tests/fuzz/corpus/<target>/), up to
# MEDKOORD_FUZZ_JOBS targets at a time. New interesting inputs go to a working
# corpus in the build folder. A crash, leak, timeout or out-of-memory input is
# saved under <build>/fuzz-artifacts/<target>/, its path and the command that
# reproduces it are printed, and the script fails. Once the code is fixed,
# copy the input into corpus/<target>/ (named after the bug): the GCC build
# replays the corpus as the unit test <target>_corpus.
#
#   tests/fuzz/run.sh [seconds] [target ...]   default 30 s, every target
#   MEDKOORD_FUZZ_BUILD=<dir>                  build folder, default <repo>/build-fuzz
#   MEDKOORD_FUZZ_JOBS=<n>                     targets run at once (and compile jobs), default 2
#
# tests/run.sh calls this after the ctest run (CI's fuzz step).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${MEDKOORD_FUZZ_BUILD:-$root/build-fuzz}
jobs=${MEDKOORD_FUZZ_JOBS:-2}
seconds=${1:-30}
shift || true

started=$SECONDS
"$root/tests/fuzz/build.sh" "$@" || exit 1
built_in=$((SECONDS - started))
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then mapfile -t targets <"$build/fuzz_targets.txt"; fi

# One target; the fuzzer's exit code goes to <build>/fuzz-<target>.rc.
fuzz_one() {
  local t=$1 bin="$build/tests/fuzz/$1"
  local work="$build/fuzz-corpus/$t" artifacts="$build/fuzz-artifacts/$t/"
  mkdir -p "$work" "$artifacts"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 "$bin" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$artifacts" -print_final_stats=1 \
    "$work" "$root/tests/fuzz/corpus/$t" >"$build/fuzz-$t.log" 2>&1
  echo $? >"$build/fuzz-$t.rc"
}

status=0
summary=()
names=()
for t in "${targets[@]}"; do
  if [[ ! -x "$build/tests/fuzz/$t" ]]; then
    # Only a known clang-14 failure gets here (build.sh fails otherwise).
    summary+=("$t: skipped, does not build with clang-14 (known, see build.sh's message)")
    continue
  fi
  # Earlier findings are reported with this run's only.
  rm -f "$build/fuzz-artifacts/$t/"{crash,leak,timeout,oom,slow-unit}-* 2>/dev/null
  echo "run.sh: $t for ${seconds}s"
  while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n; done
  rm -f "$build/fuzz-$t.rc"
  fuzz_one "$t" &
  names+=("$t")
done
wait

for t in "${names[@]}"; do
  rc=$(cat "$build/fuzz-$t.rc" 2>/dev/null || echo 125)
  log="$build/fuzz-$t.log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [[ $rc -ne 0 ]]; then
    status=1
    summary+=("$t: FAILED (exit $rc), ${runs:-?} runs, $cov; log $log")
    grep -m3 -E "ERROR: AddressSanitizer|ERROR: LeakSanitizer|property failed|ERROR: libFuzzer|SUMMARY" "$log" | sed 's/^/    /'
    for input in "$build/fuzz-artifacts/$t/"{crash,leak,timeout,oom}-*; do
      [[ -e "$input" ]] || continue
      summary+=("    reproducer: $input")
      summary+=("    reproduce:  $build/tests/fuzz/$t $input")
    done
  else
    summary+=("$t: ok, ${runs:-?} runs, $cov")
  fi
done
printf 'run.sh: %s\n' "${summary[@]}"
echo "run.sh: build ${built_in}s, fuzzing $((SECONDS - started - built_in))s"
exit $status
