#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/fuzz_*.cpp) with clang + ASan + UBSan in build-fuzz/
# and runs each for a bounded time, seeded from tests/fuzz/corpus/<target>/ (with the token
# dictionary tests/fuzz/<target>.dict when there is one).
# Exits non-zero if any target finds a crash, sanitizer report, leak, timeout or OOM; the
# reproducer is left in build-fuzz/artifacts/ (replay: build-fuzz/tests/fuzz/<target> <file>).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]        default 30
#   FUZZ_JOBS=2 FUZZ_MAX_LEN=16384 scripts/fuzz.sh 60
set -euo pipefail

seconds="${1:-30}"
max_len="${FUZZ_MAX_LEN:-8192}"
jobs="${FUZZ_JOBS:-2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-fuzz"
cd "$root"

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }

CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DBRISK_FUZZ=ON -DBRISK_CUDA=OFF \
  -DBRISK_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=()
for src in tests/fuzz/fuzz_*.cpp; do
  [ -e "$src" ] || continue
  targets+=("$(basename "$src" .cpp)")
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz.sh: no tests/fuzz/fuzz_*.cpp targets" >&2; exit 2; }
ninja -C "$build" -j"$jobs" "${targets[@]}"

mkdir -p "$build/artifacts"
failed=()
for t in "${targets[@]}"; do
  # New inputs go to a scratch corpus in the build dir; the committed seeds stay untouched.
  work="$build/corpus/$t"
  mkdir -p "$work"
  seeds=()
  [ -d "tests/fuzz/corpus/$t" ] && seeds+=("tests/fuzz/corpus/$t")
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict+=("-dict=tests/fuzz/$t.dict")  # optional token dictionary
  echo "== $t: ${seconds}s, max_len $max_len"
  if ! "$build/tests/fuzz/$t" "$work" "${seeds[@]}" "${dict[@]}" \
      -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
      -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
      > "$build/$t.log" 2>&1; then
    failed+=("$t")
    tail -n 40 "$build/$t.log"
  else
    grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "$build/$t.log" | tail -n 2 || true
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (logs: build-fuzz/<target>.log, reproducers: build-fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets clean"
