// Q8_0 and Q4_0: one f16 scale per 32 values, symmetric. The quantizers follow llama.cpp's
// reference ones (quantize_row_q8_0_ref / quantize_row_q4_0_ref) so our files match theirs.
#include <algorithm>
#include <cmath>

#include "backend/cpu/quant_blocks.h"
#include "core/dtype.h"

namespace brisk::quant::detail {

void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK32; ++b, x += kQK32) {
    float amax = 0.0f;
    for (int j = 0; j < kQK32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    // |x * id| <= 127 up to rounding of id, and roundf(127.00001) is still 127.
    for (int j = 0; j < kQK32; ++j) y[b].qs[j] = int8_t(std::round(x[j] * id));
  }
}

void quantize_q4_0(const float* x, BlockQ4_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK32; ++b, x += kQK32) {
    // The scale maps the value of largest magnitude to -8 exactly (keeping its sign), which
    // uses the one extra negative level of the 4-bit range [-8, 7].
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK32; ++j)
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    for (int j = 0; j < kQK32 / 2; ++j) {
      // Truncation of v + 8.5 is round-half-up of v + 8 for v >= -8.5, as in ggml.
      int lo = std::min(15, int(int8_t(x[j] * id + 8.5f)));
      int hi = std::min(15, int(int8_t(x[j + kQK32 / 2] * id + 8.5f)));
      y[b].qs[j] = uint8_t(lo | (hi << 4));
    }
  }
}

void dequantize_block(const BlockQ8_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK32; ++j) y[j] = d * float(b.qs[j]);
}

void dequantize_block(const BlockQ4_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK32 / 2; ++j) {
    y[j] = d * float((b.qs[j] & 0xF) - 8);
    y[j + kQK32 / 2] = d * float((b.qs[j] >> 4) - 8);
  }
}

}  // namespace brisk::quant::detail
