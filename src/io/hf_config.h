// Hugging Face config.json / generation_config.json <-> ModelConfig / GenerationConfig.
//
// Parsing follows transformers' config classes (LlamaConfig, MistralConfig, Qwen2Config,
// Qwen3Config): a key that is absent takes that class's default, a key that is null takes the
// class's None handling. The shape keys (vocab_size, hidden_size, intermediate_size,
// num_hidden_layers, num_attention_heads) are required instead: a config.json without them is
// broken, and silently building a 7B-shaped default model would hide that. Both RoPE layouts are
// read: `rope_theta` + `rope_scaling` (transformers v4) and `rope_parameters` (v5).
// Every error is one line naming the file and the key.
#pragma once
#include <string>

#include "model/config.h"

namespace brisk::io {

ModelConfig parse_hf_config(const std::string& json_text, const std::string& path_for_errors);
// Reads <model_dir>/config.json.
ModelConfig load_model_config(const std::string& model_dir);
// A config.json that transformers loads as the same model (architectures, model_type, every
// shape field, head_dim, rope_scaling when not default, torch_dtype, token ids, ...).
std::string model_config_to_json(const ModelConfig& cfg);

GenerationConfig parse_generation_config(const std::string& json_text, const std::string& path_for_errors);
// Reads <model_dir>/generation_config.json; the file is optional (absent -> defaults).
GenerationConfig load_generation_config(const std::string& model_dir);
// Writes only the fields that are set (-1 = not given is left out).
std::string generation_config_to_json(const GenerationConfig& gen);


}  // namespace brisk::io
