// The ggml block layouts (llama.cpp ggml-common.h, REFERENCE.md §3) as C++ structs, and the
// per-type row kernels behind backend/quant.h. Internal to the CPU backend: other code goes
// through quant::quantize_row / dequantize_row / dot_row.
//
// Halves are IEEE binary16 bit patterns (uint16_t); every struct has 2-byte alignment and no
// padding, so an array of blocks is exactly the bytes a GGUF file holds.
#pragma once
#include <cstdint>
#include <cstring>

namespace brisk::quant::detail {

constexpr int kQK32 = 32;   // Q8_0, Q4_0 block
constexpr int kQKK = 256;   // K-quant super-block

struct BlockQ8_0 {
  uint16_t d;        // scale
  int8_t qs[kQK32];  // y = d * q
};

struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK32 / 2];  // y[j] = d*((qs[j]&15)-8), y[j+16] = d*((qs[j]>>4)-8)
};

struct BlockQ4_K {
  uint16_t d;              // super-block scale of the 6-bit sub-block scales
  uint16_t dmin;           // super-block scale of the 6-bit sub-block mins
  uint8_t scales[12];      // 8 x (6-bit scale, 6-bit min), packed (unpack_scale_min)
  uint8_t qs[kQKK / 2];    // per 64 values: 32 bytes, low nibbles first 32, high nibbles next 32
};

struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];    // 5th bit: chunk c of 64 uses bits 2c (first 32) and 2c+1 (next 32)
  uint8_t qs[kQKK / 2];    // low 4 bits, as in Q4_K
};

struct BlockQ6_K {
  uint8_t ql[kQKK / 2];    // low 4 bits
  uint8_t qh[kQKK / 4];    // high 2 bits
  int8_t scales[kQKK / 16];  // 16 sub-blocks of 16, 8-bit signed scales
  uint16_t d;
};

static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18, "ggml 32-element block sizes");
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210,
              "ggml K-quant block sizes");

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves the integer in the
// low mantissa bits (the FPU's default rounding does the rounding). llama.cpp's quantizers round
// this way, so ties land where theirs do.
inline int nearest_int(float v) {
  float biased = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &biased, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

// Sub-block j (0..7) of a Q4_K/Q5_K scales[12]: the 6-bit scale and min. Sub-blocks 0..3 keep
// theirs in the low 6 bits of bytes j and j+4; 4..7 keep the low 4 bits in byte j+4 and the top
// 2 bits in the spare high bits of bytes j-4 (scale) and j (min).
inline void unpack_scale_min(int j, const uint8_t* s, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = uint8_t((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *min = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Row kernels: n is a multiple of the type's block (checked by the public entry points).
void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void quantize_q4_0(const float* x, BlockQ4_0* y, int64_t n);
void quantize_q4_k(const float* x, BlockQ4_K* y, int64_t n);
void quantize_q5_k(const float* x, BlockQ5_K* y, int64_t n);
void quantize_q6_k(const float* x, BlockQ6_K* y, int64_t n);

// One block to floats (32 or 256 values).
void dequantize_block(const BlockQ8_0& b, float* y);
void dequantize_block(const BlockQ4_0& b, float* y);
void dequantize_block(const BlockQ4_K& b, float* y);
void dequantize_block(const BlockQ5_K& b, float* y);
void dequantize_block(const BlockQ6_K& b, float* y);

}  // namespace brisk::quant::detail
