// `brisk init-model`: writes a complete Hugging Face model folder with deterministic random
// weights, for tests and benchmarks (no hub downloads needed).
#pragma once
#include <string>

#include "model/config.h"

namespace brisk {

struct InitModelOptions {
  std::string arch = "llama";      // llama, mistral, qwen2, qwen3
  std::string preset = "tiny";     // tiny, small, 1b, 8b
  uint64_t seed = 0;
  std::string tokenizer_dir;       // copy tokenizer files from here; vocab size follows it
  std::string dtype = "f32";       // f32 or bf16
  int tie = -1;                    // -1 preset default, 0 untied, 1 tied
  std::string rope_scaling;        // "" preset default, or none|linear|llama3|yarn
  int64_t sliding_window = -1;     // -1 preset default, 0 none
  int64_t vocab_size = 0;          // 0: the tokenizer's, or 32000 without one
};

// The config `init_model` would write (without touching the disk).
ModelConfig preset_config(const InitModelOptions& opt);
// Writes config.json, generation_config.json, model.safetensors (+ tokenizer files).
// Refuses to write into a folder that already holds a config.json.
ModelConfig init_model(const std::string& out_dir, const InitModelOptions& opt);

}  // namespace brisk
