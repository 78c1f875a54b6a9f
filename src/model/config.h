// ModelConfig: everything the engine needs to know about a model's shape, parsed from a
// Hugging Face config.json (io/hf_config) or built by `brisk init-model`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace brisk {

// Supported architectures. Switches over Arch have no default: so the compiler lists every
// place a new one must be handled.
enum class Arch { Llama, Mistral, Qwen2, Qwen3 };

enum class RopeType { Default, Linear, Dynamic, Llama3, Yarn };

const char* rope_type_name(RopeType t);  // "default", "linear", "dynamic", "llama3", "yarn"

struct RopeScaling {
  RopeType type = RopeType::Default;
  double factor = 1.0;
  double low_freq_factor = 1.0;                  // llama3
  double high_freq_factor = 4.0;                 // llama3
  int64_t original_max_position_embeddings = 0;  // llama3, yarn, dynamic
  double attention_factor = 0.0;                 // yarn; 0 = default 0.1*ln(factor)+1
  double beta_fast = 32.0, beta_slow = 1.0;      // yarn
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string model_type;  // as written in config.json ("llama", "mistral", "qwen2", "qwen3")
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  std::vector<float> rope_freq_factors;  // GGUF rope_freqs.weight: inv_freq[i] /= factor[i]
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // bias on q,k,v (qwen2: true; llama: attention_bias key, also on o)
  bool o_bias = false;          // bias on o_proj (llama with attention_bias=true)
  bool mlp_bias = false;
  bool qk_norm = false;         // qwen3: RMSNorm over head_dim on q and k before RoPE
  int64_t sliding_window = 0;   // 0 = none (full attention on every layer)
  int64_t max_window_layers = 0;  // qwen2: layers >= this use sliding window (when enabled)
  std::string hidden_act = "silu";
  std::string torch_dtype = "float32";
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;

  // Sliding window for layer `layer` (0 = full attention).
  int64_t window_for_layer(int64_t layer) const;
};

// From generation_config.json (optional file): stop ids and sampling defaults.
struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;
  int64_t bos_token_id = -1;
  double temperature = -1, top_p = -1, min_p = -1, repetition_penalty = -1;  // -1 = not given
  int64_t top_k = -1;
  bool do_sample = false;
};

}  // namespace brisk
