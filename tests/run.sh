#!/usr/bin/env bash
# THE test command (README, .ci/run): installs missing Debian packages,
# configures and builds build/ (incrementally on a re-run), then runs every
# unit, integration and e2e test with ctest. Integration tests start their own
# private PostgreSQL cluster (tests/support). Then every libFuzzer target runs
# for about 30 s on its committed seed corpus (tests/fuzz/run.sh: a small
# clang-14 build in build/fuzz/); a crash fails the run and its reproducer is
# printed. Benchmarks and the load/soak driver (tests/load/) are not run here.
#
#   bash tests/run.sh              everything
#   bash tests/run.sh -L unit      extra arguments go to ctest (and skip the fuzzing)
#   MEDKOORD_FUZZ=0 / =1           skip / force the fuzz step
#   MEDKOORD_FUZZ_SECONDS=<n>      seconds per fuzz target, default 30
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${MEDKOORD_BUILD_DIR:-$ROOT/build}
JOBS=${MEDKOORD_JOBS:-2}

bash "$ROOT/deploy/local/install-packages.sh"

# ccache (when present) keys on paths relative to the checkout, so a fresh
# clone on the same machine reuses earlier compilations.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true

cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# Keep going past a failing target, so that ctest still reports on everything
# else (tests whose binary did not build show up as *_NOT_BUILT failures).
build_rc=0
cmake --build "$BUILD_DIR" -j "$JOBS" -- -k 0 || build_rc=$?

# The summary line ("100% tests passed, 0 tests failed out of N") is ctest's.
test_rc=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" -LE 'bench|benchmark' "$@" || test_rc=$?

# Fuzzing: by default only in the full run (no ctest arguments), as CI does.
fuzz_rc=0
fuzz=${MEDKOORD_FUZZ:-}
if [ -z "$fuzz" ]; then fuzz=$([ "$#" -eq 0 ] && echo 1 || echo 0); fi
if [ "$fuzz" = 1 ]; then
  echo "medkoord: fuzzing every target for ${MEDKOORD_FUZZ_SECONDS:-30}s (tests/fuzz/run.sh)"
  MEDKOORD_FUZZ_BUILD="$BUILD_DIR/fuzz" MEDKOORD_FUZZ_JOBS="$JOBS" \
    bash "$ROOT/tests/fuzz/run.sh" "${MEDKOORD_FUZZ_SECONDS:-30}" </dev/null || fuzz_rc=$?
fi

if [ "$build_rc" -ne 0 ]; then
  echo "medkoord: the build failed (exit $build_rc); see the compiler output above" >&2
  exit "$build_rc"
fi
if [ "$test_rc" -ne 0 ]; then exit "$test_rc"; fi
if [ "$fuzz_rc" -ne 0 ]; then
  echo "medkoord: fuzzing failed (exit $fuzz_rc); reproducers are listed above (tests/fuzz/README.md)" >&2
  exit "$fuzz_rc"
fi
exit 0
