// Row entry points of backend/quant.h: dispatch on the type to the block kernels of
// quant_legacy.cpp / quant_k.cpp. dot_row dequantizes one block at a time into a stack buffer
// (at most 256 floats, 1 KiB: stays in L1) and dots it with x, so a matmul over quantized
// weights reads each weight byte once and never materialises an f32 row.
#include <cstring>

#include "backend/cpu/quant_blocks.h"
#include "backend/cpu/simd.h"
#include "backend/quant.h"
#include "core/dtype.h"
#include "core/error.h"

namespace brisk::quant {
namespace {

using namespace detail;

void check_row(DType t, int64_t n, const char* what) {
  BRISK_ASSERT(dtype_is_quantized(t), what, ": ", dtype_name(t), " is not a block-quantized type");
  BRISK_ASSERT(n % dtype_block_elems(t) == 0, what, ": row of ", n, " values is not a multiple of the ",
               dtype_name(t), " block (", dtype_block_elems(t), ")");
}

template <typename Block, int kElems>
void dequantize_blocks(const void* src, float* dst, int64_t n) {
  const Block* b = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kElems; ++i) dequantize_block(b[i], dst + i * kElems);
}

template <typename Block, int kElems>
float dot_blocks(const void* src, const float* x, int64_t n) {
  const Block* b = static_cast<const Block*>(src);
  alignas(32) float buf[kElems];
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kElems; ++i) {
    dequantize_block(b[i], buf);
    sum += ops::cpu::dot(buf, x + i * kElems, kElems);
  }
  return sum;
}

#ifdef BRISK_CPU_AVX2
// Q8_0 and Q4_0 decode straight from the bytes into ymm registers: their blocks are small
// enough that the stack round trip of the generic path costs more than the weights' bandwidth.
inline __m256 widen8(__m128i bytes, bool is_signed) {  // the low 8 bytes -> 8 floats
  return _mm256_cvtepi32_ps(is_signed ? _mm256_cvtepi8_epi32(bytes) : _mm256_cvtepu8_epi32(bytes));
}

template <>
float dot_blocks<BlockQ8_0, kQK32>(const void* src, const float* x, int64_t n) {
  const BlockQ8_0* b = static_cast<const BlockQ8_0*>(src);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK32; ++i, x += kQK32) {
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs));
    const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs + 16));
    __m256 s = _mm256_mul_ps(widen8(q0, true), _mm256_loadu_ps(x));
    s = _mm256_fmadd_ps(widen8(_mm_srli_si128(q0, 8), true), _mm256_loadu_ps(x + 8), s);
    s = _mm256_fmadd_ps(widen8(q1, true), _mm256_loadu_ps(x + 16), s);
    s = _mm256_fmadd_ps(widen8(_mm_srli_si128(q1, 8), true), _mm256_loadu_ps(x + 24), s);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(b[i].d)), s, acc);
  }
  return ops::cpu::hsum(acc);
}

template <>
float dot_blocks<BlockQ4_0, kQK32>(const void* src, const float* x, int64_t n) {
  const BlockQ4_0* b = static_cast<const BlockQ4_0*>(src);
  const __m128i low4 = _mm_set1_epi8(0xF);
  const __m256 eight = _mm256_set1_ps(8.0f);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK32; ++i, x += kQK32) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs));
    const __m128i lo = _mm_and_si128(raw, low4);                     // values 0..15
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), low4);  // values 16..31
    __m256 s = _mm256_mul_ps(_mm256_sub_ps(widen8(lo, false), eight), _mm256_loadu_ps(x));
    s = _mm256_fmadd_ps(_mm256_sub_ps(widen8(_mm_srli_si128(lo, 8), false), eight), _mm256_loadu_ps(x + 8), s);
    s = _mm256_fmadd_ps(_mm256_sub_ps(widen8(hi, false), eight), _mm256_loadu_ps(x + 16), s);
    s = _mm256_fmadd_ps(_mm256_sub_ps(widen8(_mm_srli_si128(hi, 8), false), eight), _mm256_loadu_ps(x + 24), s);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(b[i].d)), s, acc);
  }
  return ops::cpu::hsum(acc);
}
#endif

}  // namespace

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  check_row(t, n, "quantize_row");
  switch (t) {
    case DType::Q8_0: return quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), n);
    case DType::Q4_0: return quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), n);
    case DType::Q4_K: return quantize_q4_k(src, static_cast<BlockQ4_K*>(dst), n);
    case DType::Q5_K: return quantize_q5_k(src, static_cast<BlockQ5_K*>(dst), n);
    case DType::Q6_K: return quantize_q6_k(src, static_cast<BlockQ6_K*>(dst), n);
    case DType::F32: case DType::BF16: case DType::F16: case DType::I32: case DType::I64: case DType::U8:
      break;
  }
  BRISK_ASSERT(false, "quantize_row: unreachable");
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  check_row(t, n, "dequantize_row");
  switch (t) {
    case DType::Q8_0: return dequantize_blocks<BlockQ8_0, kQK32>(src, dst, n);
    case DType::Q4_0: return dequantize_blocks<BlockQ4_0, kQK32>(src, dst, n);
    case DType::Q4_K: return dequantize_blocks<BlockQ4_K, kQKK>(src, dst, n);
    case DType::Q5_K: return dequantize_blocks<BlockQ5_K, kQKK>(src, dst, n);
    case DType::Q6_K: return dequantize_blocks<BlockQ6_K, kQKK>(src, dst, n);
    case DType::F32: case DType::BF16: case DType::F16: case DType::I32: case DType::I64: case DType::U8:
      break;
  }
  BRISK_ASSERT(false, "dequantize_row: unreachable");
}

float dot_row(DType t, const void* row, const float* x, int64_t n) {
  check_row(t, n, "dot_row");
  switch (t) {
    case DType::Q8_0: return dot_blocks<BlockQ8_0, kQK32>(row, x, n);
    case DType::Q4_0: return dot_blocks<BlockQ4_0, kQK32>(row, x, n);
    case DType::Q4_K: return dot_blocks<BlockQ4_K, kQKK>(row, x, n);
    case DType::Q5_K: return dot_blocks<BlockQ5_K, kQKK>(row, x, n);
    case DType::Q6_K: return dot_blocks<BlockQ6_K, kQKK>(row, x, n);
    case DType::F32: case DType::BF16: case DType::F16: case DType::I32: case DType::I64: case DType::U8:
      break;
  }
  BRISK_ASSERT(false, "dot_row: unreachable");
  return 0.0f;
}

}  // namespace brisk::quant
