#!/usr/bin/env bash
# brisk vs Hugging Face transformers + PEFT, training throughput, on the GPU machine, in one
# call: runs `brisk bench train --device cuda` and ../shared/bench/hf_peft_baseline.py on the same
# shapes (LoRA r16 on all seven projections, bf16) and prints one JSON line per pair with the
# ratio. Usage (from the repository root, with .device/ carried; see docs/GPU_WORKFLOW.md):
#   bash bench/gpu_compare.sh [1b|8b|all] [STEPS]
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
[ -x "$BRISK" ] || tar -C .device -xJf .device/bin.tar.xz
export LD_LIBRARY_PATH="$PWD/.device/bin/lib:${LD_LIBRARY_PATH:-}"

# shape preset batch seq hf_grad_ckpt brisk_recompute
CASES=()
case "$WHICH" in
  1b) CASES=("llama-3.2-1b 1b 4 2048 0 none") ;;
  8b) CASES=("llama-3.1-8b 8b 2 2048 1 selective") ;;
  all) CASES=("llama-3.2-1b 1b 4 2048 0 none" "llama-3.1-8b 8b 2 2048 1 selective") ;;
  *) echo "usage: bench/gpu_compare.sh [1b|8b|all] [STEPS]" >&2; exit 2 ;;
esac

for c in "${CASES[@]}"; do
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
