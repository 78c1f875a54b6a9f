#include "model/init_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/log.h"
#include "core/rng.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/arch.h"
#include "model/weights.h"

namespace brisk {
namespace {

struct TokenizerFacts {
  int64_t vocab_size = 32000;
  int64_t bos = -1;
  std::vector<int64_t> eos;
};

// Reads the few facts init-model needs straight from tokenizer.json / tokenizer_config.json.
TokenizerFacts read_tokenizer_facts(const std::string& dir) {
  TokenizerFacts f;
  nlohmann::json tj;
  std::string path = path_join(dir, "tokenizer.json");
  try {
    tj = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat(path, ": invalid JSON: ", e.what()));
  }
  std::map<std::string, int64_t> ids;
  int64_t max_id = -1;
  if (tj.contains("model") && tj["model"].contains("vocab") && tj["model"]["vocab"].is_object())
    for (auto& [tok, id] : tj["model"]["vocab"].items())
      if (id.is_number_integer()) { ids[tok] = id; max_id = std::max<int64_t>(max_id, id); }
  if (tj.contains("added_tokens") && tj["added_tokens"].is_array())
    for (auto& a : tj["added_tokens"])
      if (a.contains("id") && a["id"].is_number_integer() && a.contains("content") && a["content"].is_string()) {
        ids[a["content"]] = a["id"];
        max_id = std::max<int64_t>(max_id, a["id"]);
      }
  BRISK_CHECK(max_id >= 0, path, ": no vocabulary found (model.vocab)");
  f.vocab_size = max_id + 1;
  nlohmann::json cfg = nlohmann::json::object();
  std::string cpath = path_join(dir, "tokenizer_config.json");
  if (file_exists(cpath)) {
    try {
      cfg = nlohmann::json::parse(read_file(cpath));
    } catch (const nlohmann::json::exception& e) {
      throw Error(cat(cpath, ": invalid JSON: ", e.what()));
    }
  }
  auto token_id = [&](const char* key) -> int64_t {
    if (!cfg.contains(key)) return -1;
    const auto& v = cfg[key];
    std::string s = v.is_string() ? v.get<std::string>()
                    : (v.is_object() && v.contains("content") && v["content"].is_string()) ? v["content"].get<std::string>()
                                                                                             : "";
    auto it = ids.find(s);
    return it == ids.end() ? -1 : it->second;
  };
  f.bos = token_id("bos_token");
  if (int64_t e = token_id("eos_token"); e >= 0) f.eos.push_back(e);
  // End-of-turn tokens of common chat formats also stop generation (as real generation
  // configs list them, e.g. Llama 3.1 Instruct's [128001, 128008, 128009]).
  for (const char* t : {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<end_of_turn>", "<|endoftext|>", "</s>"}) {
    auto it = ids.find(t);
    if (it != ids.end() && std::find(f.eos.begin(), f.eos.end(), it->second) == f.eos.end()) f.eos.push_back(it->second);
  }
  return f;
}

struct PresetShape {
  int64_t hidden, inter, layers, heads, kv_heads, head_dim, max_pos;
  double theta;
  bool tied;
};

PresetShape preset_shape(const std::string& preset, Arch arch) {
  bool qwen3 = arch == Arch::Qwen3;
  if (preset == "tiny") return {64, 128, 2, 4, 2, qwen3 ? 32 : 16, 4096, 500000.0, false};
  if (preset == "small") return {512, 1536, 8, 8, 4, qwen3 ? 128 : 64, 8192, 500000.0, false};
  if (preset == "1b") return {2048, 8192, 16, 32, 8, qwen3 ? 128 : 64, 131072, 500000.0, true};   // Llama-3.2-1B
  if (preset == "8b") return {4096, 14336, 32, 32, 8, 128, 131072, 500000.0, false};               // Llama-3.1-8B
  throw Error(cat("unknown preset \"", preset, "\" (choose tiny, small, 1b or 8b)"));
}

// Uniform in [-b, b) with a per-tensor stream, so a tensor's values depend only on the seed
// and its name (not on the order tensors are generated in).
void fill_uniform(float* p, int64_t n, uint64_t seed, const std::string& name, float center, float b) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  Rng rng(seed ^ h);
  for (int64_t i = 0; i < n; ++i) p[i] = center + rng.uniform(-b, b);
}

}  // namespace

ModelConfig preset_config(const InitModelOptions& opt) {
  ModelConfig c;
  c.arch = arch_from_model_type(opt.arch);
  c.model_type = arch_info(c.arch).model_type;
  PresetShape s = preset_shape(opt.preset, c.arch);
  TokenizerFacts tf;
  if (!opt.tokenizer_dir.empty()) tf = read_tokenizer_facts(opt.tokenizer_dir);
  c.vocab_size = opt.vocab_size > 0 ? opt.vocab_size : tf.vocab_size;
  c.hidden_size = s.hidden;
  c.intermediate_size = s.inter;
  c.num_layers = s.layers;
  c.num_heads = s.heads;
  c.num_kv_heads = s.kv_heads;
  c.head_dim = s.head_dim;
  c.max_position_embeddings = s.max_pos;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = s.theta;
  c.tie_word_embeddings = opt.tie < 0 ? s.tied : opt.tie == 1;
  c.bos_token_id = tf.bos;
  c.eos_token_ids = tf.eos;
  c.torch_dtype = opt.dtype == "bf16" ? "bfloat16" : "float32";
  BRISK_CHECK(opt.dtype == "f32" || opt.dtype == "bf16", "unknown --dtype \"", opt.dtype, "\" (f32 or bf16)");

  std::string rs = opt.rope_scaling;
  if (rs.empty()) rs = c.arch == Arch::Llama ? "llama3" : "none";
  if (rs == "llama3") {
    c.rope_scaling.type = RopeType::Llama3;
    c.rope_scaling.factor = opt.preset == "1b" ? 32.0 : 8.0;
    c.rope_scaling.low_freq_factor = 1.0;
    c.rope_scaling.high_freq_factor = 4.0;
    c.rope_scaling.original_max_position_embeddings = 8192;
  } else if (rs == "linear") {
    c.rope_scaling.type = RopeType::Linear;
    c.rope_scaling.factor = 4.0;
  } else if (rs == "yarn") {
    c.rope_scaling.type = RopeType::Yarn;
    c.rope_scaling.factor = 4.0;
    c.rope_scaling.original_max_position_embeddings = s.max_pos / 4;
  } else {
    BRISK_CHECK(rs == "none", "unknown --rope-scaling \"", rs, "\" (none, linear, llama3, yarn)");
  }
  switch (c.arch) {
    case Arch::Llama: break;
    case Arch::Mistral:
      c.rope_theta = 1000000.0;
      c.sliding_window = opt.sliding_window >= 0 ? opt.sliding_window : (opt.preset == "tiny" ? 16 : 4096);
      break;
    case Arch::Qwen2:
      c.attention_bias = true;
      c.rope_theta = 1000000.0;
      c.rms_norm_eps = 1e-6;
      break;
    case Arch::Qwen3:
      c.qk_norm = true;
      c.rope_theta = 1000000.0;
      c.rms_norm_eps = 1e-6;
      break;
  }
  if (c.arch != Arch::Mistral && opt.sliding_window > 0) {
    c.sliding_window = opt.sliding_window;
    c.max_window_layers = 0;
  }
  return c;
}

ModelConfig init_model(const std::string& out_dir, const InitModelOptions& opt) {
  ModelConfig cfg = preset_config(opt);
  BRISK_CHECK(!file_exists(path_join(out_dir, "config.json")), out_dir,
              " already holds a model (config.json); choose an empty folder");
  make_dirs(out_dir);

  ModelWeights w;
  w.layers.resize(size_t(cfg.num_layers));
  auto specs = weight_specs(cfg, w);
  const DType dt = opt.dtype == "bf16" ? DType::BF16 : DType::F32;
  MemoryPlan plan;
  for (auto& s : specs) plan.add(s.name, dt, s.shape);
  Arena arena(plan.total());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& s : specs) {
    int64_t n = s.shape.numel();
    std::vector<float> v(static_cast<size_t>(n));
    const std::string& name = s.name;
    bool is_norm = name.find("norm") != std::string::npos;
    bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm) {
      fill_uniform(v.data(), n, opt.seed, name, 1.0f, 0.2f);
    } else if (is_bias) {
      fill_uniform(v.data(), n, opt.seed, name, 0.0f, 0.2f);
    } else if (name == hf_names::embed()) {
      fill_uniform(v.data(), n, opt.seed, name, 0.0f, 1.0f);
    } else {
      // Unit-variance outputs (b = sqrt(3 / fan_in)); the LM head twice that so that logits are
      // well separated and greedy decoding is not decided by rounding noise.
      float fan_in = float(s.shape[1]);
      float b = std::sqrt(3.0f / fan_in) * (name == hf_names::lm_head() ? 2.0f : 1.0f);
      fill_uniform(v.data(), n, opt.seed, name, 0.0f, b);
    }
    Tensor t = arena.tensor(dt, s.shape);
    convert_floats(v.data(), DType::F32, t.data, dt, size_t(n));
    tensors.push_back({name, t});
  }
  io::write_safetensors(path_join(out_dir, "model.safetensors"), tensors);
  write_file_atomic(path_join(out_dir, "config.json"), io::model_config_to_json(cfg));
  GenerationConfig gen;
  gen.eos_token_ids = cfg.eos_token_ids;
  gen.bos_token_id = cfg.bos_token_id;
  write_file_atomic(path_join(out_dir, "generation_config.json"), io::generation_config_to_json(gen));
  if (!opt.tokenizer_dir.empty()) {
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                          "tokenizer.model"}) {
      std::string src = path_join(opt.tokenizer_dir, f);
      if (file_exists(src)) write_file_atomic(path_join(out_dir, f), read_file(src));
    }
  }
  return cfg;
}

}  // namespace brisk
