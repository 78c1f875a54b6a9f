#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test that needs no GPU (CI runs this).
# Set BRISK_FUZZ_SECONDS=0 to skip the bounded fuzzing pass.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build -LE gpu --output-on-failure -j "$(nproc)"
FUZZ_SECONDS=${BRISK_FUZZ_SECONDS:-20}
if [ "$FUZZ_SECONDS" != 0 ] && [ -x scripts/fuzz.sh ]; then
  scripts/fuzz.sh "$FUZZ_SECONDS"
fi
echo "all tests passed"
