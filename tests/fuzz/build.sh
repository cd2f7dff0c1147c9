#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang-14, libFuzzer and
# AddressSanitizer in a build folder of their own (the main build stays GCC).
# Only the fuzz targets and the small libraries of the code under test are
# compiled (tests/fuzz/CMakeLists.txt), through ccache when it is installed.
# Installs clang-14 and the libFuzzer runtime first when they are missing
# (Debian 12 packages, with deploy/local/install-packages.sh).
#
#   tests/fuzz/build.sh [target ...]      default: every target in CMakeLists.txt
#   MEDKOORD_FUZZ_BUILD=<dir>             build folder, default <repo>/build-fuzz
#   MEDKOORD_FUZZ_JOBS=<n>                parallel compile jobs, default 2
#
# A target whose sources do not compile with clang-14 is reported and left
# out; the script fails when any target does not build.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${MEDKOORD_FUZZ_BUILD:-$root/build-fuzz}
jobs=${MEDKOORD_FUZZ_JOBS:-2}

have_fuzzer_runtime() {
  ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1
}
if ! command -v clang++-14 >/dev/null || ! have_fuzzer_runtime; then
  bash "$root/deploy/local/install-packages.sh" clang-14 libclang-rt-14-dev llvm-14 || {
    echo "build.sh: could not install clang-14 and the libFuzzer runtime" >&2
    exit 1
  }
fi

# ccache keys on paths relative to the checkout, so a fresh clone reuses
# earlier compilations (as tests/run.sh does for the GCC build).
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true

# Release without NDEBUG: assert() stays on in the code under test; line
# tables are enough for ASan's stack traces and much cheaper than full -g.
mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,fuzzer-no-link -fno-omit-frame-pointer" \
  -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only" \
  -DMEDKOORD_FUZZ=ON -DMEDKOORD_BUILD_BENCHMARKS=OFF >"$build/configure.log" 2>&1 || {
  echo "build.sh: configure failed, see $build/configure.log" >&2
  tail -20 "$build/configure.log" >&2
  exit 1
}

# The configure step lists the targets (fuzz_targets.txt) and those clang-14
# is known to reject, with the reason (fuzz_known_failures.txt).
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then mapfile -t targets <"$build/fuzz_targets.txt"; fi
declare -A known
while IFS=$'\t' read -r name why; do
  [[ -n "$name" ]] && known[$name]=$why
done <"$build/fuzz_known_failures.txt"

# All targets in one ninja run (-k 0: past a failing one), so both cores stay
# busy; then say which did not build (a no-op for those that did).
cmake --build "$build" -j"$jobs" --target "${targets[@]}" -- -k 0 >"$build/build.log" 2>&1
built=()
status=0
for t in "${targets[@]}"; do
  if cmake --build "$build" --target "$t" >"$build/$t.build.log" 2>&1; then
    built+=("$t")
    if [[ -n "${known[$t]:-}" ]]; then
      echo "build.sh: $t builds with clang-14 now: remove its KNOWN_CLANG_FAILURE in tests/fuzz/CMakeLists.txt" >&2
    fi
  elif [[ -n "${known[$t]:-}" ]]; then
    echo "build.sh: $t left out, known: ${known[$t]}" >&2
  else
    status=1
    echo "build.sh: $t does not build with clang-14, see $build/$t.build.log" >&2
    grep -m5 -E "error:|undefined reference" "$build/$t.build.log" >&2 || tail -5 "$build/$t.build.log" >&2
  fi
done
echo "build.sh: built ${built[*]:-nothing}"
exit $status
