// GGUF block quantization on the CPU: quantize, dequantize and dot products for the block
// layouts llama.cpp uses (REFERENCE.md §3), bit-compatible with ggml so llama.cpp reads what we
// write and we read what it writes.
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace brisk::quant {

// ggml type ids (GGUF tensor info) <-> DType. Plain F32/F16/BF16 included.
uint32_t ggml_type_of(DType t);
bool dtype_of_ggml(uint32_t ggml_type, DType* out);  // false for types brisk does not support
const char* ggml_type_name(uint32_t ggml_type);      // "Q4_K", ... ("?" when unknown)

// n must be a multiple of dtype_block_elems(t). dst holds dtype_row_bytes(t, n) bytes.
// K-quants search scales and mins to minimise the squared error as llama.cpp's reference
// quantizer does (not naive min/max).
void quantize_row(DType t, const float* src, void* dst, int64_t n);
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// sum_i dequant(row)[i] * x[i], without materialising the row.
float dot_row(DType t, const void* row, const float* x, int64_t n);

// The per-tensor type of llama.cpp's mixed presets: for "q4_k_m" and "q5_k_m", which tensors get
// more bits (e.g. attn_v and ffn_down in some layers, output/token_embd), given the GGUF tensor
// name ("blk.3.ffn_down.weight", "output.weight", ...) and the number of layers. For the plain
// presets returns the preset's type. Falls back (and says so through *fallback_reason) when the
// row length is not a multiple of the chosen type's block: K-quants need 256, Q8_0/Q4_0 need 32.
// Norms, biases and rope_freqs are F32 under every preset. tied_embeddings: the model has no
// output.weight and token_embd doubles as the output projection; llama.cpp then gives
// token_embd the output's type (Q6_K in the K presets). *fallback_reason is cleared otherwise.
// Throws brisk::Error for an unknown preset or a blk.N name with N outside [0, n_layers).
DType type_for_tensor(const std::string& preset, const std::string& gguf_name, int64_t n_layers,
                      int64_t row_len, std::string* fallback_reason, bool tied_embeddings = false);

// The GGUF general.file_type for a preset name ("f32" 0, "f16" 1, "q4_0" 2, "q8_0" 7,
// "q4_k_m" 15, "q5_k_m" 17, "q6_k" 18, "bf16" 32). Throws brisk::Error naming an unknown preset.
uint32_t file_type_of(const std::string& preset);

}  // namespace brisk::quant
