#!/usr/bin/env bash
# Runs ON THE GPU MACHINE (device tool) from the repository root, with `.device` carried:
#   .device/tok.tar.xz  real tokenizer folders (scripts/gpu/pack.sh makes it)
#   .device/bin.tar.xz  the brisk binary built here (scripts/gpu/pack.sh; unpacked to .device/bin)
# Regenerates the golden references and the text benchmarks, writing everything to $OUT:
#   tokenizer_refs.json chat_refs.json model_refs.json train_refs.json train_*.safetensors
#                                                       -> commit under tests/golden/data/
#   bench_tokenize.jsonl                                -> numbers for docs/BENCHMARKS.md
set -euo pipefail
: "${OUT:?run this through the device tool}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
TR=/tmp/brisk-tok
mkdir -p "$TR" && tar -C "$TR" -xJf .device/tok.tar.xz
[ -x .device/bin/brisk ] || tar -C .device -xJf .device/bin.tar.xz
export LD_LIBRARY_PATH="$PWD/.device/bin/lib:${LD_LIBRARY_PATH:-}"
BRISK=.device/bin/brisk
what=${1:-all}
if [ "$what" = all ] || [ "$what" = text ]; then
  python3 tests/golden/make_text_refs.py --tok-root "$TR/tok" --out "$OUT" \
    --bench-mb 10 --bench-corpus /tmp/tok_bench.txt | tee "$OUT/bench_tokenize.jsonl"
  "$BRISK" bench tokenize "$TR/tok/llama3" --file /tmp/tok_bench.txt --repeat 3 | tee -a "$OUT/bench_tokenize.jsonl"
  "$BRISK" bench tokenize "$TR/tok/llama3" --file /tmp/tok_bench.txt --repeat 3 --lines | tee -a "$OUT/bench_tokenize.jsonl"
fi
if [ "$what" = all ] || [ "$what" = model ]; then
  python3 tests/golden/make_model_refs.py --brisk "$BRISK" --tok-root "$TR/tok" --out "$OUT"
fi
if [ "$what" = all ] || [ "$what" = train ]; then
  python3 tests/golden/make_train_refs.py --brisk "$BRISK" --tok-root "$TR/tok" --out "$OUT"
fi
ls -la "$OUT"
