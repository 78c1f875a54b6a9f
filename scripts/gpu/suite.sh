#!/usr/bin/env bash
# The GPU machine's half of the workflow (docs/GPU_WORKFLOW.md): run from the repository root of
# the carried tree, with .device/ made by scripts/gpu/pack.sh. Stages (any order, default all):
#   ops    the CUDA parity tests (brisk_ops_tests = `ctest -L gpu`), log in $OUT/ops_tests.txt
#   bench  training and decode benchmarks against the HF baselines (bench/gpu_compare.sh)
# Example device command: bash scripts/gpu/suite.sh ops bench
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/brisk-out}
mkdir -p "$OUT"
tmp=$(mktemp -d)
tar -C "$tmp" -xJf .device/tok.tar.xz
# The binaries travel compressed (scripts/gpu/pack.sh); unpacked into .device/bin once.
[ -x .device/bin/brisk ] || tar -C .device -xJf .device/bin.tar.xz
export LD_LIBRARY_PATH="$PWD/.device/bin/lib:${LD_LIBRARY_PATH:-}"
export BRISK_TEST_TOKENIZERS="$tmp/tok" BRISK_TEST_BINARY="$PWD/.device/bin/brisk" BRISK_TEST_SOURCE_DIR="$PWD"
nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(ops bench)
rc=0
for s in "${stages[@]}"; do
  case "$s" in
    ops)
      ./.device/bin/brisk_ops_tests --gtest_color=no ${GTEST_FILTER:+--gtest_filter=$GTEST_FILTER} > "$OUT/ops_tests.txt" 2>&1 || rc=1
      grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests ran" "$OUT/ops_tests.txt" | tail -20 ;;
    bench)
      OUT="$OUT" bash bench/gpu_compare.sh "${BENCH_WHICH:-all}" "${BENCH_STEPS:-5}" || rc=1 ;;
    *) echo "unknown stage $s" >&2; rc=2 ;;
  esac
done
exit $rc
