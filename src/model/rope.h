// RoPE frequency tables: the inverse frequencies and cos/sin scale that transformers'
// modeling_rope_utils.py computes for a model config, reproduced operation by operation in fp32
// so the angles fed to ops::rope are the ones the Hugging Face model uses.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace brisk {

struct RopeTable {
  std::vector<float> inv_freq;  // n_freq entries; element i of a head pairs with i + n_freq
  float mscale = 1.0f;          // multiplies cos and sin (YaRN "attention_factor"; 1 otherwise)
  int n_freq = 0;               // head_dim / 2 (partial rotary is not supported yet)
};

// The table for cfg.rope_scaling.type over head_dim = cfg.head_dim, theta = cfg.rope_theta:
//  - Default: inv_freq[i] = 1 / theta^(2i/d), fp32 as transformers computes it.
//  - Linear: default / factor.
//  - Dynamic (NTK): at seq_len <= max_position_embeddings this is the default table (what
//    transformers builds at load time); for a longer seq_len the base grows to
//    theta * (factor * seq_len / max_pos - (factor - 1))^(d / (d - 2)), as transformers'
//    dynamic update does when a sequence outgrows the cached length. Pass seq_len = 0 for the
//    load-time table.
//  - Llama3: Llama 3.1's wavelength-banded interpolation (factor, low/high_freq_factor,
//    original_max_position_embeddings).
//  - Yarn: ramp blend of interpolated and extrapolated frequencies between the correction dims
//    of beta_fast and beta_slow (floored/ceiled: transformers' truncate = true), against
//    original_max_position_embeddings (or max_position_embeddings when not given); mscale =
//    attention_factor, default 0.1 * ln(factor) + 1 (1 when factor <= 1). The factor is used as
//    given (transformers >= 5; some 4.5x releases replaced it by max_pos / original_max_pos
//    whenever original_max_position_embeddings was present).
// Throws brisk::Error for configs that cannot describe a rotary embedding (odd or zero
// head_dim, theta <= 0, factor <= 0, llama3 without original_max_position_embeddings, ...).
RopeTable make_rope_table(const ModelConfig& cfg, int64_t seq_len = 0);

}  // namespace brisk
