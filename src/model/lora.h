// LoRA adapters on the frozen base linears: y = x W^T + s * (dropout(x) A^T) B^T with
// s = alpha / r (or alpha / sqrt(r) for rsLoRA). Saved and loaded in Hugging Face PEFT's
// format (adapter_config.json + adapter_model.safetensors), so adapters round-trip with PEFT.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "core/arena.h"
#include "model/config.h"

namespace brisk {

// The seven projections LoRA can target, in PEFT's module names.
enum class Proj { Q, K, V, O, Gate, Up, Down };
constexpr int kNumProj = 7;
const char* proj_name(Proj p);          // "q_proj", ..., "down_proj"
const char* proj_parent(Proj p);        // "self_attn" or "mlp"
bool proj_from_name(const std::string& name, Proj* out);
// Input and output sizes of a projection for this config.
int64_t proj_in(const ModelConfig& c, Proj p);
int64_t proj_out(const ModelConfig& c, Proj p);

struct LoraModule {
  Tensor A;  // [r, in]
  Tensor B;  // [out, r]
  bool defined() const { return A.defined(); }
};

struct LoraSpec {
  int r = 16;
  double alpha = 16;
  double dropout = 0.0;
  bool rslora = false;
  std::array<bool, kNumProj> targets{};  // which projections carry an adapter
  float scale() const;                   // alpha / r, or alpha / sqrt(r)
};

// Parses PEFT-style target_modules: names ("q_proj", ...), "all-linear", or full module paths
// ending in a projection name. Throws naming an unknown module.
std::array<bool, kNumProj> parse_target_modules(const std::vector<std::string>& names);

struct LoraAdapter {
  LoraSpec spec;
  Arena arena;
  std::vector<std::array<LoraModule, kNumProj>> layers;  // [layer][proj]

  const LoraModule& at(int64_t layer, Proj p) const { return layers[size_t(layer)][size_t(p)]; }
  int64_t parameter_count() const;
  // PEFT tensor name of a module's A or B: base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight
  static std::string peft_name(int64_t layer, Proj p, bool is_b);
};

// A fresh adapter as PEFT initialises one: A kaiming-uniform (a = sqrt(5): U(-1/sqrt(in),
// 1/sqrt(in))), B zero. seeded. random_b fills B too (tests: a zero B has zero A-gradients).
LoraAdapter init_lora(const ModelConfig& cfg, const LoraSpec& spec, uint64_t seed, bool random_b = false);

// Writes adapter_config.json + adapter_model.safetensors into dir (atomically, per file).
void save_peft_adapter(const LoraAdapter& a, const ModelConfig& cfg, const std::string& dir,
                       const std::string& base_model_name);
// Loads a PEFT LoRA adapter (also ones trained by PEFT) for a base model with config cfg.
// Checks every shape against the base model ("adapter for a different base model": names the
// tensor and both shapes); rejects PEFT features we do not implement (DoRA, fan_in_fan_out,
// bias != none, modules_to_save, rank/alpha patterns) by name.
LoraAdapter load_peft_adapter(const std::string& dir, const ModelConfig& cfg);

}  // namespace brisk
