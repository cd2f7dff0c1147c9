#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang-14, libFuzzer and
# AddressSanitizer (every library they link is instrumented too). The main
# build stays GCC; this is a separate build folder.
#
#   tests/fuzz/build.sh [target ...]      default: every target in CMakeLists.txt
#   MEDKOORD_FUZZ_BUILD=<dir>             build folder, default <repo>/build-fuzz
#
# A target whose sources do not compile with clang-14 is reported and left
# out; the script fails only when none builds.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${MEDKOORD_FUZZ_BUILD:-$root/build-fuzz}
jobs=${MEDKOORD_FUZZ_JOBS:-2}

if ! command -v clang++-14 >/dev/null; then
  echo "build.sh: clang++-14 not found: apt-get install -y clang-14 libclang-rt-14-dev" >&2
  exit 1
fi
if [[ ! -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ]] \
   && ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "build.sh: libFuzzer runtime missing: apt-get install -y libclang-rt-14-dev" >&2
  exit 1
fi

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(sed -n 's/^medkoord_fuzz_target(\([a-z0-9_]*\).*/\1/p' "$root/tests/fuzz/CMakeLists.txt")
fi

cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,fuzzer-no-link -fno-omit-frame-pointer" \
  -DMEDKOORD_FUZZ=ON -DMEDKOORD_BUILD_BENCHMARKS=OFF >"$build.configure.log" 2>&1 || {
  echo "build.sh: configure failed, see $build.configure.log" >&2
  tail -20 "$build.configure.log" >&2
  exit 1
}

built=()
failed=()
for t in "${targets[@]}"; do
  if cmake --build "$build" -j"$jobs" --target "$t" >"$build/$t.build.log" 2>&1; then
    built+=("$t")
  else
    failed+=("$t")
    echo "build.sh: $t does not build with clang-14, see $build/$t.build.log" >&2
    grep -m5 "error:" "$build/$t.build.log" >&2 || tail -5 "$build/$t.build.log" >&2
  fi
done
echo "build.sh: built ${built[*]:-nothing}${failed:+; not built: ${failed[*]}}"
[[ ${#built[@]} -gt 0 ]]
