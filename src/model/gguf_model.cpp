#include "model/gguf_model.h"

#include <algorithm>
#include <cstring>

#include "core/fs.h"
#include "core/thread_pool.h"
#include "model/gguf_names.h"
#include "model/arch.h"

namespace brisk {

bool is_gguf_path(const std::string& p) {
  return p.size() > 5 && p.compare(p.size() - 5, 5, ".gguf") == 0 && file_exists(p);
}

ModelConfig config_from_gguf(const io::GGUFFile& f) {
  ModelConfig c;
  const std::string a = f.get_string("general.architecture");
  if (a == "llama") c.arch = Arch::Llama;
  else if (a == "qwen2") c.arch = Arch::Qwen2;
  else if (a == "qwen3") c.arch = Arch::Qwen3;
  else throw Error(cat(f.path(), ": GGUF architecture \"", a, "\" is not supported (llama, qwen2, qwen3)"));
  BRISK_CHECK(f.get_string_or("general.type", "model") == "model", f.path(), " is a GGUF ",
              f.get_string("general.type"), ", not a model (a LoRA adapter goes with --adapter on its base)");
  c.model_type = arch_info(c.arch).model_type;
  c.hidden_size = f.get_int(a + ".embedding_length");
  c.num_layers = f.get_int(a + ".block_count");
  c.intermediate_size = f.get_int(a + ".feed_forward_length");
  c.num_heads = f.get_int(a + ".attention.head_count");
  c.num_kv_heads = f.get_int_or(a + ".attention.head_count_kv", c.num_heads);
  BRISK_CHECK(c.hidden_size > 0 && c.num_layers > 0 && c.num_heads > 0 && c.num_kv_heads > 0 &&
                  c.num_heads % c.num_kv_heads == 0 && c.intermediate_size > 0,
              f.path(), ": inconsistent model dimensions in the GGUF metadata");
  c.head_dim = f.get_int_or(a + ".attention.key_length", c.hidden_size / c.num_heads);
  c.max_position_embeddings = f.get_int_or(a + ".context_length", 4096);
  c.rms_norm_eps = f.get_float_or(a + ".attention.layer_norm_rms_epsilon", 1e-5);
  c.rope_theta = f.get_float_or(a + ".rope.freq_base", 10000.0);
  std::string st = f.get_string_or(a + ".rope.scaling.type", "none");
  if (st == "linear") {
    c.rope_scaling.type = RopeType::Linear;
    c.rope_scaling.factor = f.get_float(a + ".rope.scaling.factor");
  } else if (st == "yarn") {
    c.rope_scaling.type = RopeType::Yarn;
    c.rope_scaling.factor = f.get_float(a + ".rope.scaling.factor");
    c.rope_scaling.original_max_position_embeddings = f.get_int_or(a + ".rope.scaling.original_context_length", 0);
  } else {
    BRISK_CHECK(st == "none", f.path(), ": RoPE scaling type \"", st, "\" is not supported");
  }
  if (f.has_tensor("rope_freqs.weight")) {
    Tensor t = f.tensor("rope_freqs.weight");
    BRISK_CHECK(t.dtype == DType::F32, f.path(), ": rope_freqs.weight must be F32");
    c.rope_freq_factors.assign(t.f32(), t.f32() + t.numel());
  }
  BRISK_CHECK(f.has_tensor("token_embd.weight"), f.path(), ": no token_embd.weight tensor");
  c.vocab_size = f.tensor_info("token_embd.weight").shape()[0];
  c.tie_word_embeddings = !f.has_tensor("output.weight");
  c.attention_bias = f.has_tensor("blk.0.attn_q.bias");
  c.o_bias = f.has_tensor("blk.0.attn_output.bias");
  c.qk_norm = f.has_tensor("blk.0.attn_q_norm.weight");
  c.bos_token_id = f.get_int_or("tokenizer.ggml.bos_token_id", -1);
  GenerationConfig g = generation_config_from_gguf(f);
  c.eos_token_ids = g.eos_token_ids;
  c.torch_dtype = "float32";
  return c;
}

GenerationConfig generation_config_from_gguf(const io::GGUFFile& f) {
  GenerationConfig g;
  for (const char* k : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (f.has(k)) {
      int64_t id = f.get_int(k);
      if (std::find(g.eos_token_ids.begin(), g.eos_token_ids.end(), id) == g.eos_token_ids.end()) g.eos_token_ids.push_back(id);
    }
  g.bos_token_id = f.get_int_or("tokenizer.ggml.bos_token_id", -1);
  return g;
}

ModelWeights weights_from_gguf(const io::GGUFFile& f, const ModelConfig& cfg) {
  ModelWeights w;
  w.layers.resize(size_t(cfg.num_layers));
  auto specs = weight_specs(cfg, w);
  // Quantized tensors keep their type; F16/BF16 become F32 (the CPU ops read F32 or blocks).
  std::vector<DType> types;
  MemoryPlan plan;
  for (auto& s : specs) {
    std::string g = gguf_tensor_name(s.name);
    BRISK_CHECK(f.has_tensor(g), f.path(), ": tensor ", g, " is missing");
    Tensor t = f.tensor(g);
    BRISK_CHECK(t.shape == s.shape, f.path(), ": tensor ", g, " has shape ", t.shape.str(), ", expected ", s.shape.str());
    DType d = dtype_is_quantized(t.dtype) ? t.dtype : DType::F32;
    BRISK_CHECK(d == DType::F32 || s.shape.ndim == 2, f.path(), ": 1-D tensor ", g, " is quantized");
    types.push_back(d);
    plan.add(s.name, d, s.shape);
  }
  w.arena = Arena(plan.total());
  const bool permute = gguf_permutes_qk(cfg.arch);
  for (size_t i = 0; i < specs.size(); ++i) {
    const WeightSpec& s = specs[i];
    std::string g = gguf_tensor_name(s.name);
    Tensor src = f.tensor(g);
    Tensor dst = w.arena.tensor(types[i], s.shape);
    if (dtype_is_quantized(src.dtype)) {
      std::memcpy(dst.data, src.data, src.nbytes());
    } else {
      const size_t es = dtype_size(src.dtype);
      parallel_for(src.numel(), 1 << 16, [&](int64_t b, int64_t e) {
        convert_floats(static_cast<const uint8_t*>(src.data) + size_t(b) * es, src.dtype, dst.f32() + b, DType::F32,
                       size_t(e - b));
      });
    }
    int64_t heads = 0;
    if (permute && s.name.find("self_attn.q_proj.") != std::string::npos) heads = cfg.num_heads;
    if (permute && s.name.find("self_attn.k_proj.") != std::string::npos) heads = cfg.num_kv_heads;
    if (heads > 0) {  // undo the export permutation: HF row perm[r] = GGUF row r
      std::vector<int64_t> perm = qk_permutation(heads, cfg.head_dim);
      const size_t rb = s.shape.ndim == 2 ? dtype_row_bytes(dst.dtype, s.shape[1]) : dtype_size(dst.dtype);
      std::vector<uint8_t> tmp(dst.nbytes());
      for (size_t r = 0; r < perm.size(); ++r)
        std::memcpy(tmp.data() + size_t(perm[r]) * rb, static_cast<uint8_t*>(dst.data) + r * rb, rb);
      std::memcpy(dst.data, tmp.data(), tmp.size());
    }
    *s.slot = dst;
  }
  if (cfg.tie_word_embeddings) w.lm_head = w.embed;
  return w;
}

}  // namespace brisk
