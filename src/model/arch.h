// The architecture table: what differs between supported model families, as data.
// model/archs/<arch>.cpp holds only behaviour that data cannot express.
#pragma once
#include <string>
#include <string_view>

#include "model/config.h"

namespace brisk {

struct ArchInfo {
  Arch arch;
  const char* model_type;        // config.json "model_type"
  const char* hf_architecture;   // config.json "architectures"[0]
  const char* gguf_name;         // GGUF general.architecture
  bool qkv_bias;                 // q/k/v projections carry a bias by default
  bool qk_norm;                  // per-head RMSNorm on q and k before RoPE
  bool neox_rope_in_gguf;        // GGUF stores HF halves-rotation as is (no Q/K permutation)
  const char* default_act;       // hidden_act
};

const ArchInfo& arch_info(Arch a);
// Throws brisk::Error naming the model_type and listing the supported ones.
Arch arch_from_model_type(std::string_view model_type);
std::string supported_model_types();  // "llama, mistral, qwen2, qwen3"

// Hugging Face tensor names (layer-local names take the layer index).
namespace hf_names {
std::string embed();
std::string final_norm();
std::string lm_head();
std::string layer(int64_t i, std::string_view leaf);  // "model.layers.{i}.{leaf}"
}  // namespace hf_names

}  // namespace brisk
