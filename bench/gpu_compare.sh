#!/usr/bin/env bash
# brisk vs Hugging Face on the GPU machine, in one call, same shapes, one JSON line per pair with
# the ratio:
#   training: `brisk bench train --device cuda` vs ../shared/bench/hf_peft_baseline.py
#             (transformers + PEFT, LoRA r16 on all seven projections, bf16);
#   decoding: `brisk bench decode --device cuda` vs ../shared/bench/decode_baseline.py
#             (transformers greedy generate with a static KV cache), batch 1, bf16, the Llama
#             shapes with the real 128,256-token vocabulary, 16-token prompt, 128 new tokens.
# Usage (from the repository root, with .device/ carried; see docs/GPU_WORKFLOW.md):
#   bash bench/gpu_compare.sh [1b|8b|train|decode|all] [STEPS]
# Logs go to $OUT (or /tmp/brisk-bench).
set -uo pipefail
cd "$(dirname "$0")/.."
WHICH=${1:-all}
STEPS=${2:-5}
OUT=${OUT:-/tmp/brisk-bench}
mkdir -p "$OUT"
BRISK=${BRISK:-.device/bin/brisk}
HF=${HF_BASELINE:-../shared/bench/hf_peft_baseline.py}
[ -f "$HF" ] || HF=bench/hf_peft_baseline.py
HF_DECODE=../shared/bench/decode_baseline.py
[ -f "$HF_DECODE" ] || HF_DECODE=bench/decode_baseline.py
[ -x "$BRISK" ] || tar -C .device -xJf .device/bin.tar.xz
export LD_LIBRARY_PATH="$PWD/.device/bin/lib:${LD_LIBRARY_PATH:-}"

# shape preset batch seq hf_grad_ckpt brisk_recompute
CASES=()
DECODE=()  # shape preset
case "$WHICH" in
  1b) CASES=("llama-3.2-1b 1b 4 2048 0 none") ;;
  8b) CASES=("llama-3.1-8b 8b 2 2048 1 selective") ;;
  train) CASES=("llama-3.2-1b 1b 4 2048 0 none" "llama-3.1-8b 8b 2 2048 1 selective") ;;
  decode) DECODE=("llama-3.2-1b 1b" "llama-3.1-8b 8b") ;;
  all) CASES=("llama-3.2-1b 1b 4 2048 0 none" "llama-3.1-8b 8b 2 2048 1 selective")
       DECODE=("llama-3.2-1b 1b" "llama-3.1-8b 8b") ;;
  *) echo "usage: bench/gpu_compare.sh [1b|8b|train|decode|all] [STEPS]" >&2; exit 2 ;;
esac

for c in ${CASES[@]+"${CASES[@]}"}; do
  read -r shape preset batch seq ckpt rc <<<"$c"
  ours=$("$BRISK" bench train --device cuda --arch llama --preset "$preset" --batch "$batch" --seq "$seq" \
           --lora-r 16 --recompute "$rc" --steps "$STEPS" 2>"$OUT/brisk_${preset}.err" | tail -1)
  echo "$ours" | tee "$OUT/brisk_${preset}.json"
  hf=$(python3 "$HF" --shape "$shape" --batch "$batch" --seq "$seq" --grad-ckpt "$ckpt" --rank 16 \
         --steps "$STEPS" 2>"$OUT/hf_${preset}.err" | tail -1)
  echo "$hf" | tee "$OUT/hf_${preset}.json"
  python3 - "$ours" "$hf" <<'PY'
import json, sys
try:
    o, h = json.loads(sys.argv[1]), json.loads(sys.argv[2])
except Exception as e:
    print(json.dumps({"compare": "failed", "why": str(e)})); sys.exit(0)
print(json.dumps({"compare": "train", "shape": h["shape"], "batch": h["batch"], "seq": h["seq"],
                  "hf_grad_ckpt": h["grad_ckpt"], "brisk_recompute": o["recompute"],
                  "brisk_tok_s": round(o["tokens_per_s"]), "hf_tok_s": h["tok_per_s"],
                  "speedup": round(o["tokens_per_s"] / h["tok_per_s"], 3),
                  "brisk_peak_gib": round(o["peak_gib"], 2), "hf_peak_gib": h["peak_GiB"],
                  "brisk_tflops": round(o["tflops"], 1), "gpu": h["gpu"]}))
PY
done | tee "$OUT/compare.jsonl"

# Decoding: the model folder gets the real Llama-3 tokenizer (vocab 128,256, as the baseline).
tok=${BRISK_TEST_TOKENIZERS:-}/llama3
for c in ${DECODE[@]+"${DECODE[@]}"}; do
  read -r shape preset <<<"$c"
  m=$(mktemp -d)/m
  "$BRISK" init-model "$m" --arch llama --preset "$preset" --dtype bf16 ${BRISK_TEST_TOKENIZERS:+--tokenizer "$tok"} \
    >"$OUT/init_${preset}.log" 2>&1
  ours=$("$BRISK" bench decode "$m" --device cuda --prompt-tokens 16 --gen-tokens 128 --repeat 3 \
           2>"$OUT/brisk_decode_${preset}.err" | tail -1)
  echo "$ours" | tee "$OUT/brisk_decode_${preset}.json"
  bw=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["d2d_copy_bytes_s"] / 1e12)' "$ours" 2>/dev/null || echo 3.0)
  hf=$(python3 "$HF_DECODE" --shape "$shape" --new 128 --bw "$bw" --modes static 2>"$OUT/hf_decode_${preset}.err" | tail -1)
  echo "$hf" | tee "$OUT/hf_decode_${preset}.json"
  rm -rf "$(dirname "$m")"
  python3 - "$ours" "$hf" <<'PY'
import json, sys
try:
    o, h = json.loads(sys.argv[1]), json.loads(sys.argv[2])
except Exception as e:
    print(json.dumps({"compare": "failed", "why": str(e)})); sys.exit(0)
print(json.dumps({"compare": "decode", "shape": h["shape"], "params": o["params"],
                  "brisk_tok_s": round(o["decode_tok_s"], 1), "hf_static_tok_s": h["tok_per_s"],
                  "speedup": round(o["decode_tok_s"] / h["tok_per_s"], 3),
                  "brisk_fraction_of_limit": round(o["decode_bandwidth_fraction"], 3),
                  "hf_fraction_of_limit": h["frac_of_bw_limit"], "copy_tb_s": round(o["d2d_copy_bytes_s"] / 1e12, 3)}))
PY
done | tee -a "$OUT/compare.jsonl"
