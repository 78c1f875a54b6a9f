// Which type each tensor gets under an export preset: llama.cpp's llama_tensor_get_type for the
// presets brisk writes (LLAMA_FTYPE_MOSTLY_Q4_K_M / Q5_K_M and the uniform ones), including its
// fallback when a row is not a whole number of blocks.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string_view>

#include "backend/quant.h"
#include "core/error.h"

namespace brisk::quant {
namespace {

struct Preset {
  const char* name;
  uint32_t file_type;  // GGUF general.file_type (llama_ftype)
  DType base;          // the type of most 2-D weights
  bool mixed;          // q4_k_m / q5_k_m: some tensors get more bits
};

constexpr Preset kPresets[] = {
    {"f32", 0, DType::F32, false},     {"f16", 1, DType::F16, false},     {"q4_0", 2, DType::Q4_0, false},
    {"q8_0", 7, DType::Q8_0, false},   {"q4_k_m", 15, DType::Q4_K, true}, {"q5_k_m", 17, DType::Q5_K, true},
    {"q6_k", 18, DType::Q6_K, false},  {"bf16", 32, DType::BF16, false},
};

const Preset& find_preset(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (const Preset& p : kPresets)
    if (lower == p.name) return p;
  std::string known;
  for (const Preset& p : kPresets) known += std::string(known.empty() ? "" : ", ") + p.name;
  throw Error(cat("unknown quantization preset '", name, "' (known: ", known, ")"));
}

std::string lower_name(DType t) {
  std::string s = dtype_name(t);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// llama.cpp quantizes only 2-D "*.weight" tensors that are not norms; the rest (norms, biases,
// rope_freqs) stay F32 whatever the preset, as convert_hf_to_gguf.py writes them.
bool is_matrix_weight(const std::string& name) {
  return ends_with(name, ".weight") && name.find("_norm.weight") == std::string::npos &&
         name != "rope_freqs.weight";
}

enum class Category { TokenEmbd, Output, AttnV, FfnDown, Other };

Category category_of(const std::string& name) {
  if (name == "output.weight") return Category::Output;
  if (name == "token_embd.weight") return Category::TokenEmbd;
  // llama.cpp treats fused qkv like attn_v (category_is_attn_v), so phi3's attn_qkv gets the
  // same extra bits.
  if (name.find("attn_v.weight") != std::string::npos || name.find("attn_qkv.weight") != std::string::npos)
    return Category::AttnV;
  if (name.find("ffn_down") != std::string::npos) return Category::FfnDown;
  return Category::Other;
}

// Layers that get more bits in the _M presets: the first and last eighth, and every third layer
// in between.
bool use_more_bits(int64_t i_layer, int64_t n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

int64_t layer_of(const std::string& name, int64_t n_layers) {
  long long layer = -1;
  BRISK_CHECK(std::sscanf(name.c_str(), "blk.%lld.", &layer) == 1, "tensor ", name,
              ": expected a per-layer name blk.N.*");
  BRISK_CHECK(layer >= 0 && layer < n_layers, "tensor ", name, ": layer ", layer, " is out of range for a model of ",
              n_layers, " layers");
  return layer;
}

}  // namespace

uint32_t file_type_of(const std::string& preset) { return find_preset(preset).file_type; }

DType type_for_tensor(const std::string& preset, const std::string& gguf_name, int64_t n_layers, int64_t row_len,
                      std::string* fallback_reason, bool tied_embeddings) {
  const Preset& p = find_preset(preset);
  if (fallback_reason) fallback_reason->clear();
  if (!is_matrix_weight(gguf_name)) return DType::F32;
  if (!dtype_is_quantized(p.base)) return p.base;

  DType t = p.base;
  const Category kind = category_of(gguf_name);
  // The output projection (and a tied embedding, which is the output projection) is the most
  // sensitive tensor: llama.cpp gives it Q6_K in every K preset, or Q8_0 when its rows are not
  // whole 256-blocks.
  const bool is_output = kind == Category::Output || (tied_embeddings && kind == Category::TokenEmbd);
  if (p.mixed) {
    if (is_output) {
      t = row_len % dtype_block_elems(DType::Q6_K) == 0 ? DType::Q6_K : DType::Q8_0;
      if (t == DType::Q8_0 && fallback_reason)  // replaced below if q8_0 does not fit either
        *fallback_reason = cat(gguf_name, ": row length ", row_len, " is not a multiple of 256, using q8_0 instead of q6_k");
    } else if (kind == Category::AttnV || kind == Category::FfnDown) {
      if (use_more_bits(layer_of(gguf_name, n_layers), n_layers)) t = DType::Q6_K;
    }
  }

  const int64_t block = dtype_block_elems(t);
  if (row_len % block == 0) return t;
  // llama.cpp's tensor_type_fallback: a 256-block type falls back to a 32-block one (it uses
  // Q5_0/Q5_1 for Q4_K/Q5_K, which brisk does not write; Q8_0 loses less than either), and a
  // row that is not even a multiple of 32 is stored as F16.
  const DType fallback = (block > 32 && row_len % 32 == 0) ? DType::Q8_0 : DType::F16;
  if (fallback_reason)
    *fallback_reason = cat(gguf_name, ": row length ", row_len, " is not a multiple of ", block, ", using ",
                           lower_name(fallback), " instead of ", lower_name(t));
  return fallback;
}

}  // namespace brisk::quant
