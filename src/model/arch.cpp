#include "model/arch.h"

#include "core/error.h"

namespace brisk {

static const ArchInfo kArchTable[] = {
    // arch          model_type  HF class              gguf     qkv_bias qk_norm neox  act
    {Arch::Llama,   "llama",   "LlamaForCausalLM",   "llama", false,   false,  false, "silu"},
    {Arch::Mistral, "mistral", "MistralForCausalLM", "llama", false,   false,  false, "silu"},
    {Arch::Qwen2,   "qwen2",   "Qwen2ForCausalLM",   "qwen2", true,    false,  true,  "silu"},
    {Arch::Qwen3,   "qwen3",   "Qwen3ForCausalLM",   "qwen3", false,   true,   true,  "silu"},
};

const ArchInfo& arch_info(Arch a) {
  for (auto& e : kArchTable)
    if (e.arch == a) return e;
  BRISK_ASSERT(false, "arch missing from table");
  return kArchTable[0];
}

std::string supported_model_types() {
  std::string s;
  for (auto& e : kArchTable) s += (s.empty() ? "" : ", ") + std::string(e.model_type);
  return s;
}

Arch arch_from_model_type(std::string_view mt) {
  for (auto& e : kArchTable)
    if (mt == e.model_type) return e.arch;
  throw Error(cat("unsupported model_type \"", mt, "\" (supported: ", supported_model_types(), ")"));
}

namespace hf_names {
std::string embed() { return "model.embed_tokens.weight"; }
std::string final_norm() { return "model.norm.weight"; }
std::string lm_head() { return "lm_head.weight"; }
std::string layer(int64_t i, std::string_view leaf) { return cat("model.layers.", i, ".", leaf); }
}  // namespace hf_names

const char* rope_type_name(RopeType t) {
  switch (t) {
    case RopeType::Default: return "default";
    case RopeType::Linear: return "linear";
    case RopeType::Dynamic: return "dynamic";
    case RopeType::Llama3: return "llama3";
    case RopeType::Yarn: return "yarn";
  }
  return "?";
}

int64_t ModelConfig::window_for_layer(int64_t layer) const {
  switch (arch) {
    case Arch::Mistral:
      return sliding_window;
    case Arch::Qwen2:
    case Arch::Qwen3:
      // sliding_window is only set when use_sliding_window is true (io/hf_config).
      return (sliding_window > 0 && layer >= max_window_layers) ? sliding_window : 0;
    case Arch::Llama:
      return 0;
  }
  return 0;
}

}  // namespace brisk
