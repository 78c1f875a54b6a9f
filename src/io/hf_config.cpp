// config.json / generation_config.json parsing and writing (see hf_config.h for the policy).
#include "io/hf_config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "core/fs.h"
#include "io/json_util.h"
#include "model/arch.h"

namespace brisk::io {

using json = nlohmann::json;

namespace {

// Typed, checked access to the keys of one JSON object. `where` prefixes key names in errors
// ("rope_scaling." for nested objects). Absent and null keys both read as "not given".
class Keys {
 public:
  Keys(const json& obj, const std::string& path, std::string where = "")
      : obj_(obj), path_(path), where_(std::move(where)) {}

  bool given(const char* key) const { return obj_.contains(key) && !obj_[key].is_null(); }
  bool present(const char* key) const { return obj_.contains(key); }  // null counts as present
  const json& at(const char* key) const { return obj_[key]; }

  [[noreturn]] void fail(const char* key, const std::string& what) const {
    throw Error(cat(path_, ": \"", where_, key, "\" ", what));
  }

  std::optional<int64_t> opt_int(const char* key) const {
    if (!given(key)) return std::nullopt;
    return as_int(key, obj_[key]);
  }
  int64_t int_or(const char* key, int64_t def) const { return opt_int(key).value_or(def); }
  int64_t req_int(const char* key) const {
    if (!given(key)) throw Error(cat(path_, ": missing \"", where_, key, "\""));
    return as_int(key, obj_[key]);
  }
  std::optional<double> opt_double(const char* key) const {
    if (!given(key)) return std::nullopt;
    const json& v = obj_[key];
    if (!v.is_number()) fail(key, cat("is ", describe(v), ", expected a number"));
    double d = v.get<double>();
    if (!std::isfinite(d)) fail(key, "is not finite");
    return d;
  }
  double double_or(const char* key, double def) const { return opt_double(key).value_or(def); }
  bool bool_or(const char* key, bool def) const {
    if (!given(key)) return def;
    const json& v = obj_[key];
    if (!v.is_boolean()) fail(key, cat("is ", describe(v), ", expected true or false"));
    return v.get<bool>();
  }
  std::optional<std::string> opt_string(const char* key) const {
    if (!given(key)) return std::nullopt;
    const json& v = obj_[key];
    if (!v.is_string()) fail(key, cat("is ", describe(v), ", expected a string"));
    return v.get<std::string>();
  }
  // An id or a list of ids (eos_token_id): null/absent -> `def`.
  std::vector<int64_t> ids_or(const char* key, std::vector<int64_t> def) const {
    if (!present(key)) return def;
    const json& v = obj_[key];
    if (v.is_null()) return {};
    if (!v.is_array()) return {as_token_id(key, v)};
    std::vector<int64_t> out;
    for (const json& e : v) out.push_back(as_token_id(key, e));
    return out;
  }
  // A single id: absent -> def, null -> -1 (none).
  int64_t id_or(const char* key, int64_t def) const {
    if (!present(key)) return def;
    return obj_[key].is_null() ? -1 : as_token_id(key, obj_[key]);
  }

  static std::string describe(const json& v) {
    std::string s = v.dump();
    if (s.size() > 40) s = s.substr(0, 37) + "...";
    return cat(v.type_name(), " ", s);
  }

 private:
  int64_t as_int(const char* key, const json& v) const {
    if (v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)))
      return v.get<int64_t>();
    fail(key, cat("is ", describe(v), ", expected an integer"));
  }
  int64_t as_token_id(const char* key, const json& v) const {
    int64_t id = as_int(key, v);
    if (id < 0) fail(key, cat("holds ", id, ", token ids are never negative"));
    return id;
  }

  const json& obj_;
  const std::string& path_;
  std::string where_;
};

// transformers' per-class defaults for keys that may be absent.
struct ArchDefaults {
  int64_t max_position_embeddings;
  std::optional<int64_t> num_kv_heads;  // nullopt: equal to num_attention_heads
  std::optional<int64_t> head_dim;      // nullopt: hidden_size / num_attention_heads
  int64_t bos, eos;                     // -1: none
  int64_t sliding_window;               // mistral; qwen2/qwen3 when use_sliding_window
  int64_t max_window_layers;
};

ArchDefaults defaults_for(Arch a) {
  switch (a) {
    case Arch::Llama: return {2048, std::nullopt, std::nullopt, 1, 2, 0, 0};
    case Arch::Mistral: return {4096 * 32, 8, std::nullopt, 1, 2, 4096, 0};
    case Arch::Qwen2: return {32768, 32, std::nullopt, -1, -1, 4096, 28};
    case Arch::Qwen3: return {32768, 32, 128, -1, -1, 4096, 28};
  }
  BRISK_ASSERT(false, "arch missing");
  return {};
}

RopeType rope_type_from(const std::string& path, const std::string& where, const std::string& name) {
  if (name == "default") return RopeType::Default;
  if (name == "linear") return RopeType::Linear;
  if (name == "dynamic") return RopeType::Dynamic;
  if (name == "llama3") return RopeType::Llama3;
  if (name == "yarn") return RopeType::Yarn;
  throw Error(cat(path, ": unsupported RoPE type \"", name, "\" in \"", where,
                  "\" (supported: default, linear, dynamic, llama3, yarn)"));
}

// Reads the scaling fields shared by rope_scaling (v4) and rope_parameters (v5).
RopeScaling parse_rope(const json& obj, const std::string& path, const std::string& where) {
  if (!obj.is_object()) throw Error(cat(path, ": \"", where, "\" is ", Keys::describe(obj), ", expected an object"));
  Keys k(obj, path, where + ".");
  RopeScaling r;
  // transformers reads rope_type first and falls back to the legacy "type".
  std::optional<std::string> type = k.opt_string("rope_type");
  if (!type) type = k.opt_string("type");
  r.type = type ? rope_type_from(path, where, *type) : RopeType::Default;
  if (r.type == RopeType::Default) return r;

  if (!k.given("factor")) throw Error(cat(path, ": missing \"", where, ".factor\" for RoPE type ", *type));
  r.factor = *k.opt_double("factor");
  if (!(r.factor > 0)) k.fail("factor", cat("is ", r.factor, ", must be positive"));
  r.original_max_position_embeddings = k.int_or("original_max_position_embeddings", 0);
  if (r.original_max_position_embeddings < 0) k.fail("original_max_position_embeddings", "is negative");
  if (r.type == RopeType::Llama3) {
    for (const char* key : {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
      if (!k.given(key)) throw Error(cat(path, ": missing \"", where, ".", key, "\" for RoPE type llama3"));
    r.low_freq_factor = *k.opt_double("low_freq_factor");
    r.high_freq_factor = *k.opt_double("high_freq_factor");
    if (!(r.low_freq_factor > 0) || !(r.high_freq_factor > r.low_freq_factor))
      k.fail("high_freq_factor", cat("must exceed low_freq_factor (", r.low_freq_factor, " vs ", r.high_freq_factor, ")"));
    if (r.original_max_position_embeddings <= 0) k.fail("original_max_position_embeddings", "must be positive");
  }
  if (r.type == RopeType::Yarn) {
    r.attention_factor = k.double_or("attention_factor", 0.0);
    r.beta_fast = k.double_or("beta_fast", 32.0);
    r.beta_slow = k.double_or("beta_slow", 1.0);
    if (r.attention_factor < 0) k.fail("attention_factor", "is negative");
  }
  return r;
}

void check_positive(const std::string& path, const char* key, int64_t v) {
  BRISK_CHECK(v > 0, path, ": \"", key, "\" is ", v, ", must be positive");
}

}  // namespace

ModelConfig parse_hf_config(const std::string& text, const std::string& path) {
  json j = parse_json_checked(text, path, /*reject_duplicate_keys=*/false);  // Python keeps the last
  if (!j.is_object()) throw Error(cat(path, ": config is ", j.type_name(), ", expected a JSON object"));
  Keys k(j, path);

  ModelConfig c;
  std::optional<std::string> mt = k.opt_string("model_type");
  if (!mt) throw Error(cat(path, ": missing \"model_type\" (supported: ", supported_model_types(), ")"));
  c.model_type = *mt;
  c.arch = with_context(path, [&] { return arch_from_model_type(c.model_type); });
  const ArchDefaults def = defaults_for(c.arch);
  const ArchInfo& info = arch_info(c.arch);

  c.vocab_size = k.req_int("vocab_size");
  c.hidden_size = k.req_int("hidden_size");
  c.intermediate_size = k.req_int("intermediate_size");
  c.num_layers = k.req_int("num_hidden_layers");
  c.num_heads = k.req_int("num_attention_heads");
  check_positive(path, "vocab_size", c.vocab_size);
  check_positive(path, "hidden_size", c.hidden_size);
  check_positive(path, "intermediate_size", c.intermediate_size);
  check_positive(path, "num_hidden_layers", c.num_layers);
  check_positive(path, "num_attention_heads", c.num_heads);

  // Absent -> class default; null -> num_attention_heads (the classes' `if None` branch).
  if (k.present("num_key_value_heads"))
    c.num_kv_heads = k.int_or("num_key_value_heads", c.num_heads);
  else
    c.num_kv_heads = def.num_kv_heads.value_or(c.num_heads);
  check_positive(path, "num_key_value_heads", c.num_kv_heads);
  BRISK_CHECK(c.num_heads % c.num_kv_heads == 0, path, ": num_key_value_heads (", c.num_kv_heads,
              ") does not divide num_attention_heads (", c.num_heads, ")");

  if (k.given("head_dim")) {
    c.head_dim = k.req_int("head_dim");
    check_positive(path, "head_dim", c.head_dim);
  } else if (!k.present("head_dim") && def.head_dim) {
    c.head_dim = *def.head_dim;
  } else {
    BRISK_CHECK(c.hidden_size % c.num_heads == 0, path, ": num_attention_heads (", c.num_heads,
                ") does not divide hidden_size (", c.hidden_size, ") and head_dim is not given");
    c.head_dim = c.hidden_size / c.num_heads;
  }

  c.max_position_embeddings = k.int_or("max_position_embeddings", def.max_position_embeddings);
  check_positive(path, "max_position_embeddings", c.max_position_embeddings);
  c.rms_norm_eps = k.double_or("rms_norm_eps", 1e-6);
  BRISK_CHECK(c.rms_norm_eps > 0, path, ": \"rms_norm_eps\" is ", c.rms_norm_eps, ", must be positive");
  c.hidden_act = k.opt_string("hidden_act").value_or(info.default_act);
  c.tie_word_embeddings = k.bool_or("tie_word_embeddings", false);  // false in all four classes
  c.torch_dtype = k.opt_string("torch_dtype").value_or(k.opt_string("dtype").value_or("float32"));

  // RoPE: v5 rope_parameters (theta inside) wins over v4 rope_theta + rope_scaling.
  c.rope_theta = k.double_or("rope_theta", 10000.0);
  if (k.given("rope_parameters")) {
    const json& rp = k.at("rope_parameters");
    c.rope_scaling = parse_rope(rp, path, "rope_parameters");
    if (rp.is_object()) c.rope_theta = Keys(rp, path, "rope_parameters.").double_or("rope_theta", c.rope_theta);
  } else if (k.given("rope_scaling")) {
    c.rope_scaling = parse_rope(k.at("rope_scaling"), path, "rope_scaling");
  }
  BRISK_CHECK(c.rope_theta > 0, path, ": \"rope_theta\" is ", c.rope_theta, ", must be positive");

  c.bos_token_id = k.id_or("bos_token_id", def.bos);
  c.eos_token_ids = k.ids_or("eos_token_id", def.eos >= 0 ? std::vector<int64_t>{def.eos} : std::vector<int64_t>{});
  c.pad_token_id = k.id_or("pad_token_id", -1);

  switch (c.arch) {
    case Arch::Llama:
      // LlamaAttention puts config.attention_bias on q, k, v and o alike.
      c.attention_bias = c.o_bias = k.bool_or("attention_bias", false);
      c.mlp_bias = k.bool_or("mlp_bias", false);
      break;
    case Arch::Mistral:
      c.sliding_window = k.present("sliding_window") ? k.int_or("sliding_window", 0) : def.sliding_window;
      break;
    case Arch::Qwen2:
    case Arch::Qwen3:
      if (c.arch == Arch::Qwen2) {
        c.attention_bias = true;  // Qwen2Attention: bias on q, k, v always, never on o
      } else {
        c.attention_bias = c.o_bias = k.bool_or("attention_bias", false);  // Qwen3: all four
        c.qk_norm = true;
      }
      c.max_window_layers = k.int_or("max_window_layers", def.max_window_layers);
      BRISK_CHECK(c.max_window_layers >= 0, path, ": \"max_window_layers\" is negative");
      // The classes keep sliding_window only when use_sliding_window is true.
      if (k.bool_or("use_sliding_window", false))
        c.sliding_window = k.present("sliding_window") ? k.int_or("sliding_window", 0) : def.sliding_window;
      break;
  }
  BRISK_CHECK(c.sliding_window >= 0, path, ": \"sliding_window\" is ", c.sliding_window, ", must not be negative");
  return c;
}

ModelConfig load_model_config(const std::string& model_dir) {
  if (!dir_exists(model_dir)) throw Error(cat("model folder ", model_dir, " does not exist or is not a folder"));
  std::string path = path_join(model_dir, "config.json");
  if (!file_exists(path)) throw Error(cat(model_dir, " has no config.json"));
  return parse_hf_config(read_file(path), path);
}

std::string model_config_to_json(const ModelConfig& c) {
  const ArchInfo& info = arch_info(c.arch);
  json j = json::object();
  j["architectures"] = {info.hf_architecture};
  j["model_type"] = info.model_type;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["hidden_act"] = c.hidden_act;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  if (c.rope_scaling.type == RopeType::Default) {
    j["rope_scaling"] = nullptr;
  } else {
    const RopeScaling& r = c.rope_scaling;
    // Both spellings: "rope_type" for current transformers, "type" for releases before 4.43.
    json rs = {{"rope_type", rope_type_name(r.type)}, {"type", rope_type_name(r.type)}, {"factor", r.factor}};
    if (r.original_max_position_embeddings > 0) rs["original_max_position_embeddings"] = r.original_max_position_embeddings;
    if (r.type == RopeType::Llama3) {
      rs["low_freq_factor"] = r.low_freq_factor;
      rs["high_freq_factor"] = r.high_freq_factor;
    }
    if (r.type == RopeType::Yarn) {
      if (r.attention_factor > 0) rs["attention_factor"] = r.attention_factor;
      rs["beta_fast"] = r.beta_fast;
      rs["beta_slow"] = r.beta_slow;
    }
    j["rope_scaling"] = rs;
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["torch_dtype"] = c.torch_dtype;
  j["bos_token_id"] = c.bos_token_id >= 0 ? json(c.bos_token_id) : json(nullptr);
  if (c.eos_token_ids.empty()) j["eos_token_id"] = nullptr;
  else if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  else j["eos_token_id"] = c.eos_token_ids;
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
  j["initializer_range"] = 0.02;
  j["attention_dropout"] = 0.0;
  j["use_cache"] = true;
  switch (c.arch) {
    case Arch::Llama:
      j["attention_bias"] = c.attention_bias;
      j["mlp_bias"] = c.mlp_bias;
      j["pretraining_tp"] = 1;
      break;
    case Arch::Mistral:
      j["sliding_window"] = c.sliding_window > 0 ? json(c.sliding_window) : json(nullptr);
      break;
    case Arch::Qwen2:
    case Arch::Qwen3:
      if (c.arch == Arch::Qwen3) j["attention_bias"] = c.attention_bias;
      j["use_sliding_window"] = c.sliding_window > 0;
      j["sliding_window"] = c.sliding_window > 0 ? json(c.sliding_window) : json(nullptr);
      j["max_window_layers"] = c.max_window_layers;
      break;
  }
  return j.dump(2) + "\n";
}

GenerationConfig parse_generation_config(const std::string& text, const std::string& path) {
  json j = parse_json_checked(text, path, /*reject_duplicate_keys=*/false);
  if (!j.is_object()) throw Error(cat(path, ": generation config is ", j.type_name(), ", expected a JSON object"));
  Keys k(j, path);
  GenerationConfig g;
  g.eos_token_ids = k.ids_or("eos_token_id", {});
  g.bos_token_id = k.id_or("bos_token_id", -1);
  g.do_sample = k.bool_or("do_sample", false);
  g.temperature = k.double_or("temperature", -1);
  g.top_p = k.double_or("top_p", -1);
  g.min_p = k.double_or("min_p", -1);
  g.repetition_penalty = k.double_or("repetition_penalty", -1);
  g.top_k = k.int_or("top_k", -1);
  if (k.given("temperature")) BRISK_CHECK(g.temperature >= 0, path, ": \"temperature\" is negative");
  if (k.given("top_p")) BRISK_CHECK(g.top_p >= 0 && g.top_p <= 1, path, ": \"top_p\" is ", g.top_p, ", not in [0, 1]");
  if (k.given("min_p")) BRISK_CHECK(g.min_p >= 0 && g.min_p <= 1, path, ": \"min_p\" is ", g.min_p, ", not in [0, 1]");
  if (k.given("repetition_penalty"))
    BRISK_CHECK(g.repetition_penalty > 0, path, ": \"repetition_penalty\" is ", g.repetition_penalty, ", must be positive");
  if (k.given("top_k")) BRISK_CHECK(g.top_k >= 0, path, ": \"top_k\" is negative");
  return g;
}

GenerationConfig load_generation_config(const std::string& model_dir) {
  std::string path = path_join(model_dir, "generation_config.json");
  if (!file_exists(path)) return {};
  return parse_generation_config(read_file(path), path);
}

std::string generation_config_to_json(const GenerationConfig& g) {
  json j = json::object();
  if (g.bos_token_id >= 0) j["bos_token_id"] = g.bos_token_id;
  if (g.eos_token_ids.size() == 1) j["eos_token_id"] = g.eos_token_ids[0];
  else if (!g.eos_token_ids.empty()) j["eos_token_id"] = g.eos_token_ids;
  j["do_sample"] = g.do_sample;
  if (g.temperature >= 0) j["temperature"] = g.temperature;
  if (g.top_p >= 0) j["top_p"] = g.top_p;
  if (g.min_p >= 0) j["min_p"] = g.min_p;
  if (g.repetition_penalty >= 0) j["repetition_penalty"] = g.repetition_penalty;
  if (g.top_k >= 0) j["top_k"] = g.top_k;
  return j.dump(2) + "\n";
}

}  // namespace brisk::io
