// Row entry points of backend/quant.h: dispatch on the type to the block kernels of
// quant_legacy.cpp / quant_k.cpp. dot_row dequantizes one block at a time into a stack buffer
// (at most 256 floats, 1 KiB: stays in L1) and dots it with x, so a matmul over quantized
// weights reads each weight byte once and never materialises an f32 row.
#include <cstring>

#include "backend/cpu/quant_blocks.h"
#include "backend/cpu/simd.h"
#include "backend/quant.h"
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
