// Element types and exact conversions between them.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace brisk {

// Q8_0 .. Q6_K are GGUF's block-quantized layouts (a block of 32 or 256 elements stored in a
// fixed number of bytes); tensors of these types are 2-D [rows, cols] with cols a multiple of
// the block size, and only some ops accept them (matmul weights, embedding tables).
enum class DType : uint8_t { F32, BF16, F16, I32, I64, U8, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K };

bool dtype_is_quantized(DType t);
int64_t dtype_block_elems(DType t);   // 1 for plain types; 32 (Q8_0, Q4_0) or 256 (K-quants)
size_t dtype_block_bytes(DType t);    // bytes per block (dtype_size for plain types)
size_t dtype_row_bytes(DType t, int64_t n);  // bytes of n elements (n a multiple of the block)
size_t dtype_size(DType t);           // bytes per element; plain types only
const char* dtype_name(DType t);             // safetensors spelling: "F32", "BF16", ...
bool dtype_from_name(std::string_view name, DType* out);  // false for names we do not support
DType dtype_parse(std::string_view name);    // throws brisk::Error naming the dtype
inline bool dtype_is_float(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }

// bf16: the upper 16 bits of an f32. Rounding is to nearest-even, NaN stays NaN (quiet).
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN: keep quiet
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// IEEE binary16, exact both ways (round to nearest-even on narrowing; subnormals handled).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Converts n elements between float dtypes (F32/BF16/F16) on the CPU.
void convert_floats(const void* src, DType src_t, void* dst, DType dst_t, size_t n);

}  // namespace brisk
