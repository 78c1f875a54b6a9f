// ggml type ids <-> brisk DType (declared in backend/quant.h). The per-type block layouts live
// in io/gguf_types.cpp; this file only says which of them brisk computes with.
#include "backend/quant.h"
#include "core/error.h"
#include "io/gguf_types.h"

namespace brisk::quant {

namespace {
struct Pair {
  DType dtype;
  uint32_t ggml;
};
// ggml.h: GGML_TYPE_F32 0, F16 1, Q4_0 2, Q8_0 8, Q4_K 12, Q5_K 13, Q6_K 14, I32 26, I64 27, BF16 30.
constexpr Pair kPairs[] = {
    {DType::F32, 0},   {DType::F16, 1},   {DType::Q4_0, 2},  {DType::Q8_0, 8}, {DType::Q4_K, 12},
    {DType::Q5_K, 13}, {DType::Q6_K, 14}, {DType::I32, 26},  {DType::I64, 27}, {DType::BF16, 30},
};
}  // namespace

uint32_t ggml_type_of(DType t) {
  for (const Pair& p : kPairs)
    if (p.dtype == t) return p.ggml;
  throw Error(cat("dtype ", dtype_name(t), " has no GGUF (ggml) type"));
}

bool dtype_of_ggml(uint32_t ggml_type, DType* out) {
  for (const Pair& p : kPairs)
    if (p.ggml == ggml_type) {
      *out = p.dtype;
      return true;
    }
  return false;
}

const char* ggml_type_name(uint32_t ggml_type) {
  const io::GGMLTypeTraits* t = io::ggml_type_traits(ggml_type);
  return t ? t->name : "?";
}

}  // namespace brisk::quant
