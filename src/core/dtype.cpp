#include "core/dtype.h"

#include <cmath>

#include "core/error.h"

namespace brisk {

bool dtype_is_quantized(DType t) { return dtype_block_elems(t) > 1; }

int64_t dtype_block_elems(DType t) {
  switch (t) {
    case DType::F32: case DType::BF16: case DType::F16: case DType::I32: case DType::I64: case DType::U8: return 1;
    case DType::Q8_0: case DType::Q4_0: return 32;
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return 256;
  }
  return 1;
}

size_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::U8: return 1;
    case DType::Q8_0: return 34;   // f16 scale + 32 x i8
    case DType::Q4_0: return 18;   // f16 scale + 16 bytes of nibbles
    case DType::Q4_K: return 144;  // f16 d, dmin + 12 bytes scales + 128 bytes nibbles
    case DType::Q5_K: return 176;  // Q4_K + 32 bytes of high bits
    case DType::Q6_K: return 210;  // 128 low + 64 high + 16 scales + f16 d
  }
  BRISK_ASSERT(false, "bad dtype");
  return 0;
}

size_t dtype_row_bytes(DType t, int64_t n) {
  int64_t b = dtype_block_elems(t);
  BRISK_ASSERT(n % b == 0, dtype_name(t), " row of ", n, " elements is not a multiple of ", b);
  return size_t(n / b) * dtype_block_bytes(t);
}

size_t dtype_size(DType t) {
  BRISK_ASSERT(!dtype_is_quantized(t), "dtype_size of block-quantized ", dtype_name(t));
  return dtype_block_bytes(t);
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
    case DType::Q4_K: return "Q4_K";
    case DType::Q5_K: return "Q5_K";
    case DType::Q6_K: return "Q6_K";
  }
  return "?";
}

bool dtype_from_name(std::string_view n, DType* out) {
  static const struct { const char* name; DType t; } table[] = {
      {"F32", DType::F32}, {"BF16", DType::BF16}, {"F16", DType::F16},
      {"I32", DType::I32}, {"I64", DType::I64},   {"U8", DType::U8}};
  for (auto& e : table)
    if (n == e.name) { *out = e.t; return true; }
  return false;
}

DType dtype_parse(std::string_view n) {
  DType t;
  if (!dtype_from_name(n, &t))
    throw Error(cat("unsupported dtype \"", n, "\" (supported: F32, BF16, F16, I32, I64, U8)"));
  return t;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do { ++e; man <<= 1; } while ((man & 0x400) == 0);
      u = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | man << 13;
  } else {
    u = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint16_t sign = uint16_t((u >> 16) & 0x8000);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00;  // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00;  // overflow (incl. rounding up) -> inf
  if (a < 0x38800000u) {                       // below smallest normal: subnormal or zero
    if (a < 0x33000000u) return sign;          // rounds to zero (<= half of smallest subnormal)
    uint32_t e = a >> 23;
    uint32_t m = (a & 0x7fffff) | 0x800000;
    int shift = 126 - int(e);                  // so that value = m >> (shift + 13 - 10 ...)
    // value / 2^-24 = m * 2^(e-127-23+24) = m >> (126 - e)
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return sign | uint16_t(q);
  }
  uint32_t q = ((a >> 13) - (112u << 10));  // rebias exponent 127 -> 15
  uint32_t rem = a & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) ++q;
  return sign | uint16_t(q);
}

void convert_floats(const void* src, DType st, void* dst, DType dt, size_t n) {
  BRISK_ASSERT(dtype_is_float(st) && dtype_is_float(dt));
  if (st == dt) { std::memcpy(dst, src, n * dtype_size(st)); return; }
  auto load = [&](size_t i) -> float {
    switch (st) {
      case DType::F32: return static_cast<const float*>(src)[i];
      case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
      case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
      default: return 0;
    }
  };
  for (size_t i = 0; i < n; ++i) {
    float v = load(i);
    switch (dt) {
      case DType::F32: static_cast<float*>(dst)[i] = v; break;
      case DType::BF16: static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v); break;
      case DType::F16: static_cast<uint16_t*>(dst)[i] = f32_to_f16(v); break;
      default: break;
    }
  }
}

}  // namespace brisk
