// The weights of a decoder-only transformer, as f32 tensors in one planned arena.
// HF tensor names are mapped to fields here once, so the forward pass never looks up strings.
#pragma once
#include <string>
#include <vector>

#include "core/arena.h"
#include "model/config.h"

namespace brisk {

struct LayerWeights {
  Tensor attn_norm;             // [H]
  Tensor wq, wk, wv, wo;        // [nh*hd, H], [nkv*hd, H], [nkv*hd, H], [H, nh*hd]
  Tensor bq, bk, bv, bo;        // biases (undefined when the arch has none)
  Tensor q_norm, k_norm;        // [hd] (qwen3)
  Tensor mlp_norm;              // [H] (post_attention_layernorm)
  Tensor w_gate, w_up, w_down;  // [I, H], [I, H], [H, I]
};

struct ModelWeights {
  Arena arena;
  Tensor embed;       // [V, H]
  Tensor final_norm;  // [H]
  Tensor lm_head;     // [V, H] (aliases embed when tied)
  std::vector<LayerWeights> layers;
};

// One entry per tensor the architecture needs: HF name, shape, and where it goes.
struct WeightSpec {
  std::string name;
  Shape shape;
  Tensor* slot;
};

// The full list for `cfg`, pointing into `w`'s fields (w.layers must be sized already).
std::vector<WeightSpec> weight_specs(const ModelConfig& cfg, ModelWeights& w);

// Loads and converts to f32 every tensor named by weight_specs from a HF model folder.
// Errors name the missing tensor or the shape mismatch; extra tensors in the folder are an
// error too (they mean the config does not describe these weights), except rotary caches.
ModelWeights load_weights(const std::string& model_dir, const ModelConfig& cfg);

size_t weight_bytes_f32(const ModelConfig& cfg);
int64_t parameter_count(const ModelConfig& cfg);

}  // namespace brisk
