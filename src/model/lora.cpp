#include "model/lora.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/rng.h"
#include "io/safetensors.h"

namespace brisk {

static const char* kProjNames[kNumProj] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

const char* proj_name(Proj p) { return kProjNames[int(p)]; }
const char* proj_parent(Proj p) { return int(p) < 4 ? "self_attn" : "mlp"; }

bool proj_from_name(const std::string& name, Proj* out) {
  for (int i = 0; i < kNumProj; ++i)
    if (name == kProjNames[i]) {
      *out = Proj(i);
      return true;
    }
  return false;
}

int64_t proj_in(const ModelConfig& c, Proj p) {
  switch (p) {
    case Proj::Q: case Proj::K: case Proj::V: case Proj::Gate: case Proj::Up: return c.hidden_size;
    case Proj::O: return c.num_heads * c.head_dim;
    case Proj::Down: return c.intermediate_size;
  }
  return 0;
}

int64_t proj_out(const ModelConfig& c, Proj p) {
  switch (p) {
    case Proj::Q: return c.num_heads * c.head_dim;
    case Proj::K: case Proj::V: return c.num_kv_heads * c.head_dim;
    case Proj::O: case Proj::Down: return c.hidden_size;
    case Proj::Gate: case Proj::Up: return c.intermediate_size;
  }
  return 0;
}

float LoraSpec::scale() const { return float(rslora ? alpha / std::sqrt(double(r)) : alpha / double(r)); }

std::array<bool, kNumProj> parse_target_modules(const std::vector<std::string>& names) {
  std::array<bool, kNumProj> t{};
  for (const std::string& n : names) {
    if (n == "all-linear") {
      t.fill(true);
      continue;
    }
    std::string leaf = n.substr(n.rfind('.') == std::string::npos ? 0 : n.rfind('.') + 1);
    Proj p;
    BRISK_CHECK(proj_from_name(leaf, &p), "unknown LoRA target module \"", n,
                "\" (valid: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, all-linear)");
    t[size_t(p)] = true;
  }
  bool any = false;
  for (bool b : t) any |= b;
  BRISK_CHECK(any, "LoRA target_modules is empty");
  return t;
}

int64_t LoraAdapter::parameter_count() const {
  int64_t n = 0;
  for (auto& layer : layers)
    for (auto& m : layer)
      if (m.defined()) n += m.A.numel() + m.B.numel();
  return n;
}

std::string LoraAdapter::peft_name(int64_t layer, Proj p, bool is_b) {
  return cat("base_model.model.model.layers.", layer, ".", proj_parent(p), ".", proj_name(p),
             is_b ? ".lora_B.weight" : ".lora_A.weight");
}

static LoraAdapter allocate(const ModelConfig& cfg, const LoraSpec& spec) {
  LoraAdapter a;
  a.spec = spec;
  MemoryPlan plan;
  for (int64_t l = 0; l < cfg.num_layers; ++l)
    for (int p = 0; p < kNumProj; ++p)
      if (spec.targets[size_t(p)]) {
        plan.add("A", DType::F32, {spec.r, proj_in(cfg, Proj(p))});
        plan.add("B", DType::F32, {proj_out(cfg, Proj(p)), spec.r});
      }
  a.arena = Arena(plan.total());
  a.layers.resize(size_t(cfg.num_layers));
  for (int64_t l = 0; l < cfg.num_layers; ++l)
    for (int p = 0; p < kNumProj; ++p)
      if (spec.targets[size_t(p)]) {
        LoraModule& m = a.layers[size_t(l)][size_t(p)];
        m.A = a.arena.tensor(DType::F32, {spec.r, proj_in(cfg, Proj(p))});
        m.B = a.arena.tensor(DType::F32, {proj_out(cfg, Proj(p)), spec.r});
      }
  return a;
}

LoraAdapter init_lora(const ModelConfig& cfg, const LoraSpec& spec, uint64_t seed, bool random_b) {
  BRISK_CHECK(spec.r >= 1, "LoRA r must be >= 1");
  LoraAdapter a = allocate(cfg, spec);
  Rng rng(seed);
  for (auto& layer : a.layers)
    for (auto& m : layer) {
      if (!m.defined()) continue;
      float bound = 1.0f / std::sqrt(float(m.A.dim(1)));
      for (int64_t i = 0; i < m.A.numel(); ++i) m.A.f32()[i] = rng.uniform(-bound, bound);
      for (int64_t i = 0; i < m.B.numel(); ++i) m.B.f32()[i] = random_b ? rng.uniform(-0.5f, 0.5f) : 0.0f;
    }
  return a;
}

void save_peft_adapter(const LoraAdapter& a, const ModelConfig& cfg, const std::string& dir,
                       const std::string& base_model_name) {
  make_dirs(dir);
  io::NamedTensors tensors;
  std::vector<std::string> targets;
  for (int p = 0; p < kNumProj; ++p)
    if (a.spec.targets[size_t(p)]) targets.push_back(proj_name(Proj(p)));
  for (int64_t l = 0; l < int64_t(a.layers.size()); ++l)
    for (int p = 0; p < kNumProj; ++p) {
      const LoraModule& m = a.layers[size_t(l)][size_t(p)];
      if (!m.defined()) continue;
      tensors.push_back({LoraAdapter::peft_name(l, Proj(p), false), m.A});
      tensors.push_back({LoraAdapter::peft_name(l, Proj(p), true), m.B});
    }
  io::write_safetensors(path_join(dir, "adapter_model.safetensors"), tensors);
  nlohmann::ordered_json j = {
      {"peft_type", "LORA"}, {"task_type", "CAUSAL_LM"}, {"base_model_name_or_path", base_model_name},
      {"r", a.spec.r}, {"lora_alpha", a.spec.alpha}, {"lora_dropout", a.spec.dropout},
      {"target_modules", targets}, {"bias", "none"}, {"use_rslora", a.spec.rslora},
      {"use_dora", false}, {"fan_in_fan_out", false}, {"init_lora_weights", true},
      {"modules_to_save", nullptr}, {"layers_to_transform", nullptr}, {"rank_pattern", nlohmann::ordered_json::object()},
      {"alpha_pattern", nlohmann::ordered_json::object()}, {"inference_mode", true},
      {"revision", nullptr}, {"library", "brisk"}, {"model_type", cfg.model_type}};
  write_file_atomic(path_join(dir, "adapter_config.json"), j.dump(2) + "\n");
}

LoraAdapter load_peft_adapter(const std::string& dir, const ModelConfig& cfg) {
  std::string cpath = path_join(dir, "adapter_config.json");
  BRISK_CHECK(dir_exists(dir), "adapter folder ", dir, " does not exist");
  BRISK_CHECK(file_exists(cpath), dir, " is not a PEFT adapter (no adapter_config.json)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(cpath));
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat(cpath, ": invalid JSON: ", e.what()));
  }
  BRISK_CHECK(j.is_object(), cpath, ": not a JSON object");
  auto str = [&](const char* k, const char* dflt) {
    if (!j.contains(k) || j[k].is_null()) return std::string(dflt);
    BRISK_CHECK(j[k].is_string(), cpath, ": \"", k, "\" must be a string");
    return j[k].get<std::string>();
  };
  auto num = [&](const char* k, double dflt) {
    if (!j.contains(k) || j[k].is_null()) return dflt;
    BRISK_CHECK(j[k].is_number(), cpath, ": \"", k, "\" must be a number");
    return j[k].get<double>();
  };
  auto flag = [&](const char* k) { return j.contains(k) && j[k].is_boolean() && j[k].get<bool>(); };
  BRISK_CHECK(str("peft_type", "LORA") == "LORA", cpath, ": peft_type \"", str("peft_type", ""),
              "\" is not supported (only LORA)");
  BRISK_CHECK(!flag("use_dora"), cpath, ": DoRA adapters (use_dora) are not supported yet");
  BRISK_CHECK(!flag("fan_in_fan_out"), cpath, ": fan_in_fan_out adapters are not supported");
  BRISK_CHECK(!flag("lora_bias"), cpath, ": adapters with LoRA biases (lora_bias) are not supported yet");
  for (const char* k : {"trainable_token_indices", "target_parameters", "layer_replication"})
    BRISK_CHECK(!j.contains(k) || j[k].is_null(), cpath, ": \"", k, "\" is not supported yet");
  BRISK_CHECK(str("bias", "none") == "none", cpath, ": bias \"", str("bias", ""), "\" is not supported (only none)");
  for (const char* k : {"modules_to_save", "layers_to_transform"})
    BRISK_CHECK(!j.contains(k) || j[k].is_null() || (j[k].is_array() && j[k].empty()), cpath, ": \"", k,
                "\" is not supported yet");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    BRISK_CHECK(!j.contains(k) || j[k].is_null() || (j[k].is_object() && j[k].empty()), cpath, ": \"", k,
                "\" is not supported yet");
  LoraSpec spec;
  spec.r = int(num("r", 8));
  BRISK_CHECK(spec.r >= 1, cpath, ": r must be >= 1");
  spec.alpha = num("lora_alpha", 8);
  spec.dropout = num("lora_dropout", 0);
  spec.rslora = flag("use_rslora");

  // target_modules: a list of names, a regex string, or "all-linear". The weights decide in
  // the end: a module is targeted when its tensors are present.
  io::SafeTensorsFile f = io::SafeTensorsFile::open(path_join(dir, "adapter_model.safetensors"));
  std::array<bool, kNumProj> present{};
  for (int64_t l = 0; l < cfg.num_layers; ++l)
    for (int p = 0; p < kNumProj; ++p)
      if (f.has(LoraAdapter::peft_name(l, Proj(p), false))) present[size_t(p)] = true;
  spec.targets = present;
  LoraAdapter a = allocate(cfg, spec);
  size_t used = 0;
  for (int64_t l = 0; l < cfg.num_layers; ++l)
    for (int p = 0; p < kNumProj; ++p) {
      LoraModule& m = a.layers[size_t(l)][size_t(p)];
      if (!m.defined()) continue;
      for (bool is_b : {false, true}) {
        std::string name = LoraAdapter::peft_name(l, Proj(p), is_b);
        BRISK_CHECK(f.has(name), dir, ": tensor ", name, " is missing (other layers of this module have one)");
        const io::TensorInfo& info = f.info(name);
        Tensor& dst = is_b ? m.B : m.A;
        BRISK_CHECK(Shape::of(info.shape) == dst.shape, dir, ": tensor ", name, " has shape ",
                    Shape::of(info.shape).str(), ", but the base model needs ", dst.shape.str(),
                    " (adapter trained for a different base model or rank?)");
        f.read_f32(name, dst.f32());
        ++used;
      }
    }
  for (const std::string& n : f.names()) {
    bool ours = false;
    for (int64_t l = 0; l < cfg.num_layers && !ours; ++l)
      for (int p = 0; p < kNumProj && !ours; ++p)
        ours = n == LoraAdapter::peft_name(l, Proj(p), false) || n == LoraAdapter::peft_name(l, Proj(p), true);
    BRISK_CHECK(ours, dir, ": tensor ", n, " does not belong to a LoRA module of this ", cfg.num_layers,
                "-layer ", cfg.model_type, " model");
  }
  BRISK_CHECK(used > 0, dir, ": adapter holds no LoRA tensors");
  return a;
}

}  // namespace brisk
