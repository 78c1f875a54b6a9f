#include "model/gguf_names.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace brisk {

const char* gguf_arch_name(Arch a) {
  switch (a) {
    case Arch::Llama:
    case Arch::Mistral: return "llama";
    case Arch::Qwen2: return "qwen2";
    case Arch::Qwen3: return "qwen3";
  }
  return "llama";
}

bool gguf_permutes_qk(Arch a) {
  switch (a) {
    case Arch::Llama:
    case Arch::Mistral: return true;
    case Arch::Qwen2:
    case Arch::Qwen3: return false;
  }
  return false;
}

namespace {
struct LeafMap {
  const char* hf;
  const char* gguf;
};
// Layer-local leaves (after "model.layers.{i}.").
const LeafMap kLeaves[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};
}  // namespace

std::string gguf_tensor_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  long long layer = -1;
  int used = 0;
  if (std::sscanf(hf.c_str(), "model.layers.%lld.%n", &layer, &used) == 1 && used > 0) {
    std::string leaf = hf.substr(size_t(used));
    for (const LeafMap& m : kLeaves)
      if (leaf == m.hf) return cat("blk.", layer, ".", m.gguf);
  }
  throw Error(cat("no GGUF name for tensor ", hf));
}

std::string hf_tensor_name(const std::string& g, int64_t n_layers) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  long long layer = -1;
  int used = 0;
  if (std::sscanf(g.c_str(), "blk.%lld.%n", &layer, &used) == 1 && used > 0 && layer >= 0 && layer < n_layers) {
    std::string leaf = g.substr(size_t(used));
    for (const LeafMap& m : kLeaves)
      if (leaf == m.gguf) return cat("model.layers.", layer, ".", m.hf);
  }
  return "";
}

std::vector<int64_t> qk_permutation(int64_t heads, int64_t hd) {
  // HF rotates halves (i, i + hd/2); llama.cpp rotates adjacent pairs (2i, 2i+1). Within a
  // head, GGUF row 2i + j (j in {0, 1}) takes HF row j * hd/2 + i.
  std::vector<int64_t> perm(size_t(heads * hd));
  const int64_t half = hd / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) perm[size_t(h * hd + 2 * i + j)] = h * hd + j * half + i;
  return perm;
}

std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  BRISK_ASSERT(s.type == RopeType::Llama3);
  const double low_wavelen = double(s.original_max_position_embeddings) / s.low_freq_factor;
  const double high_wavelen = double(s.original_max_position_embeddings) / s.high_freq_factor;
  std::vector<float> out;
  for (int64_t i = 0; i < c.head_dim; i += 2) {
    double freq = 1.0 / std::pow(c.rope_theta, double(i) / double(c.head_dim));
    double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(float(s.factor));
    } else {
      double smooth = (double(s.original_max_position_embeddings) / wavelen - s.low_freq_factor) /
                      (s.high_freq_factor - s.low_freq_factor);
      out.push_back(float(1.0 / ((1 - smooth) / s.factor + smooth)));
    }
  }
  return out;
}

}  // namespace brisk
