#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for N seconds on its committed
# seed corpus (tests/fuzz/corpus/<target>/). New interesting inputs go to a
# working corpus in the build folder; a crash leaves its input in
# <build>/fuzz-artifacts/<target>/ and makes the script fail. Copy such an
# input into corpus/<target>/ (named after the bug) once fixed: the GCC build
# replays the corpus as the unit test <target>_corpus.
#
#   tests/fuzz/run.sh [seconds] [target ...]   default 30 s, every target
#   MEDKOORD_FUZZ_BUILD=<dir>                  build folder, default <repo>/build-fuzz
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${MEDKOORD_FUZZ_BUILD:-$root/build-fuzz}
seconds=${1:-30}
shift || true

"$root/tests/fuzz/build.sh" "$@" || exit 1
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(sed -n 's/^medkoord_fuzz_target(\([a-z0-9_]*\).*/\1/p' "$root/tests/fuzz/CMakeLists.txt")
fi

status=0
summary=()
for t in "${targets[@]}"; do
  bin=$(find "$build/tests/fuzz" -maxdepth 1 -type f -name "$t" -perm -u+x | head -1)
  if [[ -z "$bin" ]]; then
    status=1
    summary+=("$t: FAILED, not built with clang-14 (see build.sh's message)")
    continue
  fi
  work="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t/"
  mkdir -p "$work" "$artifacts"
  log="$build/fuzz-$t.log"
  echo "run.sh: $t for ${seconds}s"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$bin" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$artifacts" -print_final_stats=1 \
      "$work" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [[ $rc -ne 0 ]]; then
    status=1
    summary+=("$t: FAILED (exit $rc), ${runs:-?} runs, $cov; input in $artifacts, log $log")
    grep -m3 -E "ERROR: AddressSanitizer|property failed|ERROR: libFuzzer|SUMMARY" "$log" | sed 's/^/    /'
  else
    summary+=("$t: ok, ${runs:-?} runs, $cov")
  fi
done
printf 'run.sh: %s\n' "${summary[@]}"
exit $status
