// Hugging Face <-> GGUF (llama.cpp) conventions for the architectures brisk supports: tensor
// names, the Q/K row permutation of llama.cpp's "llama" architecture, and the llama3 RoPE
// frequency factors tensor.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"

namespace brisk {

const char* gguf_arch_name(Arch a);                 // "llama" (llama, mistral), "qwen2", "qwen3"
bool gguf_permutes_qk(Arch a);                      // llama.cpp's llama arch rotates adjacent pairs
std::string gguf_tensor_name(const std::string& hf_name);  // "model.layers.3.mlp.up_proj.weight" -> "blk.3.ffn_up.weight"
std::string hf_tensor_name(const std::string& gguf_name, int64_t n_layers);  // the inverse ("" if unknown)

// Row permutation for q_proj/k_proj (and their biases) with `heads` heads of head_dim rows:
// HF row (h, half, i) -> GGUF row (h, i, half). perm[gguf_row] = hf_row.
std::vector<int64_t> qk_permutation(int64_t heads, int64_t head_dim);

// llama3 rope scaling as llama.cpp's rope_freqs.weight: one factor per frequency that divides
// it (1 = unchanged), as convert_hf_to_gguf.py computes it.
std::vector<float> llama3_rope_factors(const ModelConfig& cfg);

}  // namespace brisk
