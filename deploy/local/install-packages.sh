#!/usr/bin/env bash
# Installs the Debian 12 packages that building, testing and running medkoord
# need, if any is missing. Used by tests/run.sh and deploy/local/up.sh, so that
# both work as written on a fresh Debian 12 machine. Non-interactive.
#
#   install-packages.sh              the packages below
#   install-packages.sh PKG ...      these packages instead (tests/fuzz/build.sh: clang-14)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libpqxx-dev libabsl-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql-15 postgresql-contrib
  python3 python3-grpcio python3-protobuf python3-yaml tzdata
  openssl
  chromium
)
[ "$#" -gt 0 ] && PACKAGES=("$@")

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "medkoord: installing missing Debian packages: ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "medkoord: missing packages and not root; run as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q </dev/null
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
