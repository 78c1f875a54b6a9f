#include "model/weights.h"

#include <set>

#include "io/safetensors.h"
#include "model/arch.h"

namespace brisk {

std::vector<WeightSpec> weight_specs(const ModelConfig& c, ModelWeights& w) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t qd = c.num_heads * hd, kvd = c.num_kv_heads * hd;
  std::vector<WeightSpec> s;
  s.push_back({hf_names::embed(), {c.vocab_size, H}, &w.embed});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    LayerWeights& L = w.layers[size_t(i)];
    auto n = [&](const char* leaf) { return hf_names::layer(i, leaf); };
    s.push_back({n("input_layernorm.weight"), {H}, &L.attn_norm});
    s.push_back({n("self_attn.q_proj.weight"), {qd, H}, &L.wq});
    s.push_back({n("self_attn.k_proj.weight"), {kvd, H}, &L.wk});
    s.push_back({n("self_attn.v_proj.weight"), {kvd, H}, &L.wv});
    s.push_back({n("self_attn.o_proj.weight"), {H, qd}, &L.wo});
    if (c.attention_bias) {
      s.push_back({n("self_attn.q_proj.bias"), {qd}, &L.bq});
      s.push_back({n("self_attn.k_proj.bias"), {kvd}, &L.bk});
      s.push_back({n("self_attn.v_proj.bias"), {kvd}, &L.bv});
    }
    if (c.o_bias) s.push_back({n("self_attn.o_proj.bias"), {H}, &L.bo});
    if (c.qk_norm) {
      s.push_back({n("self_attn.q_norm.weight"), {hd}, &L.q_norm});
      s.push_back({n("self_attn.k_norm.weight"), {hd}, &L.k_norm});
    }
    s.push_back({n("post_attention_layernorm.weight"), {H}, &L.mlp_norm});
    s.push_back({n("mlp.gate_proj.weight"), {I, H}, &L.w_gate});
    s.push_back({n("mlp.up_proj.weight"), {I, H}, &L.w_up});
    s.push_back({n("mlp.down_proj.weight"), {H, I}, &L.w_down});
  }
  s.push_back({hf_names::final_norm(), {H}, &w.final_norm});
  if (!c.tie_word_embeddings) s.push_back({hf_names::lm_head(), {c.vocab_size, H}, &w.lm_head});
  return s;
}

size_t weight_bytes_f32(const ModelConfig& cfg) {
  ModelWeights w;
  w.layers.resize(size_t(cfg.num_layers));
  MemoryPlan plan;
  for (auto& s : weight_specs(cfg, w)) plan.add(s.name, DType::F32, s.shape);
  return plan.total();
}

int64_t parameter_count(const ModelConfig& cfg) {
  ModelWeights w;
  w.layers.resize(size_t(cfg.num_layers));
  int64_t n = 0;
  for (auto& s : weight_specs(cfg, w)) n += s.shape.numel();
  return n;
}

ModelWeights load_weights(const std::string& dir, const ModelConfig& cfg) {
  io::ModelWeights file = io::ModelWeights::open(dir);
  ModelWeights w;
  w.layers.resize(size_t(cfg.num_layers));
  auto specs = weight_specs(cfg, w);
  MemoryPlan plan;
  for (auto& s : specs) plan.add(s.name, DType::F32, s.shape);
  w.arena = Arena(plan.total());
  std::set<std::string> wanted;
  for (auto& s : specs) {
    wanted.insert(s.name);
    Tensor src = file.get_checked(s.name, s.shape);
    BRISK_CHECK(dtype_is_float(src.dtype), "tensor ", s.name, " in ", dir, " has dtype ",
                dtype_name(src.dtype), " (expected F32, BF16 or F16)");
    *s.slot = w.arena.tensor(DType::F32, s.shape);
    file.read_f32(s.name, s.slot->f32());
  }
  if (cfg.tie_word_embeddings) w.lm_head = w.embed;
  for (const std::string& name : file.names()) {
    if (wanted.count(name) || name.find("rotary_emb.inv_freq") != std::string::npos) continue;
    if (cfg.tie_word_embeddings && name == hf_names::lm_head()) continue;  // some tied exports keep it
    throw Error(cat("unexpected tensor ", name, " in ", dir, " (not part of a ", cfg.model_type,
                    " model with this config.json)"));
  }
  return w;
}

}  // namespace brisk
