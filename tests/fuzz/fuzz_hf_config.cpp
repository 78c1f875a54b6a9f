// libFuzzer target: arbitrary bytes as config.json and as generation_config.json. Errors are
// fine; crashes are not. An accepted config must survive model_config_to_json -> parse with
// every field intact (a mismatch traps, so the fuzzer reports it).
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/hf_config.h"

using namespace brisk;

namespace {
bool same(const ModelConfig& a, const ModelConfig& b) {
  const RopeScaling &r = a.rope_scaling, &s = b.rope_scaling;
  return a.arch == b.arch && a.model_type == b.model_type && a.vocab_size == b.vocab_size &&
         a.hidden_size == b.hidden_size && a.intermediate_size == b.intermediate_size &&
         a.num_layers == b.num_layers && a.num_heads == b.num_heads && a.num_kv_heads == b.num_kv_heads &&
         a.head_dim == b.head_dim && a.max_position_embeddings == b.max_position_embeddings &&
         a.rms_norm_eps == b.rms_norm_eps && a.rope_theta == b.rope_theta && r.type == s.type &&
         r.factor == s.factor && r.low_freq_factor == s.low_freq_factor && r.high_freq_factor == s.high_freq_factor &&
         r.original_max_position_embeddings == s.original_max_position_embeddings &&
         r.attention_factor == s.attention_factor && r.beta_fast == s.beta_fast && r.beta_slow == s.beta_slow &&
         a.tie_word_embeddings == b.tie_word_embeddings && a.attention_bias == b.attention_bias &&
         a.o_bias == b.o_bias && a.mlp_bias == b.mlp_bias && a.qk_norm == b.qk_norm &&
         a.sliding_window == b.sliding_window && a.max_window_layers == b.max_window_layers &&
         a.hidden_act == b.hidden_act && a.torch_dtype == b.torch_dtype && a.bos_token_id == b.bos_token_id &&
         a.eos_token_ids == b.eos_token_ids && a.pad_token_id == b.pad_token_id;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    ModelConfig c = io::parse_hf_config(text, "fuzz/config.json");
    ModelConfig back;
    try {
      back = io::parse_hf_config(io::model_config_to_json(c), "fuzz/round-trip.json");
    } catch (const Error&) {
      __builtin_trap();  // we wrote something we cannot read back
    }
    if (!same(c, back)) __builtin_trap();
  } catch (const Error&) {
    // rejected: fine
  }
  GenerationConfig g;
  try {
    g = io::parse_generation_config(text, "fuzz/generation_config.json");
  } catch (const Error&) {
    return 0;
  }
  GenerationConfig h;
  try {
    h = io::parse_generation_config(io::generation_config_to_json(g), "fuzz/round-trip.json");
  } catch (const Error&) {
    __builtin_trap();
  }
  if (h.eos_token_ids != g.eos_token_ids || h.bos_token_id != g.bos_token_id || h.do_sample != g.do_sample ||
      h.temperature != g.temperature || h.top_p != g.top_p || h.min_p != g.min_p ||
      h.repetition_penalty != g.repetition_penalty || h.top_k != g.top_k)
    __builtin_trap();
  return 0;
}
