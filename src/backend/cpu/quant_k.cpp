// K-quants (Q4_K, Q5_K, Q6_K): 256-value super-blocks of 8 or 16 sub-blocks, each sub-block
// with its own quantized scale (and min). The quantizers reimplement llama.cpp's reference
// (non-imatrix) paths, quantize_row_q{4,5,6}_K_ref: per sub-block, search the scale (and min)
// that minimise a weighted squared error, quantize those scales to 6 or 8 bits against one f16
// super-scale, then requantize every value with the scales as stored. Matching their search
// keeps our files as close as possible to what llama-quantize writes.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/quant_blocks.h"
#include "core/dtype.h"

namespace brisk::quant::detail {
namespace {

// Below this, a group is treated as all zeros (llama.cpp's GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

// Asymmetric fit x ~ scale * L - min over n values, L in [0, nmax], minimising
// sum w_i (scale*L_i - min - x_i)^2 (llama.cpp make_qkx2_quants). Starts from the min/max grid,
// then tries nstep+1 grids whose step is (max - min) / (nmax + rmin + rdelta*k); for each, the
// least-squares (scale, min) for the resulting levels, keeping the best. min is clamped to <= 0
// (the stored min is subtracted, so it must be non-negative). Returns scale; *neg_min = -min.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min,
                    float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = w[0], sum_x = w[0] * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::memset(L, 0, size_t(n));
    *neg_min = -min;
    return 0.0f;
  }
  float iscale = float(nmax) / (max - min);
  float scale = 1.0f / iscale;
  float best_err = 0.0f;
  for (int i = 0; i < n; ++i) {
    int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
    L[i] = uint8_t(l);
    float diff = scale * float(l) + min - x[i];
    best_err += w[i] * diff * diff;
  }
  uint8_t trial[32];
  for (int step = 0; step <= nstep; ++step) {
    iscale = (rmin + rdelta * float(step) + float(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      trial[i] = uint8_t(l);
      sum_l += w[i] * float(l);
      sum_l2 += w[i] * float(l) * float(l);  // same association as ggml, for identical sums
      sum_xl += w[i] * float(l) * x[i];
    }
    float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det <= 0) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0) {  // a positive offset cannot be stored: refit the scale alone
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) {
      float diff = this_scale * float(trial[i]) + this_min - x[i];
      err += w[i] * diff * diff;
    }
    if (err < best_err) {
      std::memcpy(L, trial, size_t(n));
      best_err = err;
      scale = this_scale;
      min = this_min;
    }
  }
  *neg_min = -min;
  return scale;
}

// Symmetric fit x ~ scale * l, l in [-nmax, nmax-1], weights x^2 (llama.cpp make_qx_quants with
// rmse_type 1 and no importance weights). The scale maps the value of largest magnitude to -nmax;
// 18 nearby grids (nmax +- 0.1k) are tried and the one with the best weighted least-squares fit
// kept. L receives l + nmax. Returns the (signed) scale.
float fit_scale_symmetric(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, size_t(n));
    return 0.0f;
  }
  auto fit = [&](float iscale, float* sumlx, float* suml2) {
    *sumlx = 0;
    *suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      float w = x[i] * x[i];
      *sumlx += w * x[i] * float(l);
      *suml2 += w * float(l) * float(l);
    }
  };
  auto assign = [&](float iscale) {
    for (int i = 0; i < n; ++i) L[i] = int8_t(nmax + std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
  };
  float iscale = -float(nmax) / max;
  float sumlx, suml2;
  fit(iscale, &sumlx, &suml2);
  assign(iscale);
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;  // = sumlx^2 / suml2: the error reduction of this fit
  for (int k = -9; k <= 9; ++k) {
    if (k == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(k)) / max;
    fit(iscale, &sumlx, &suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      assign(iscale);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q4_K and Q5_K share everything but the number of levels (nmax 15 or 31) and the search grid.
// Fills d, dmin, scales and the per-value levels L[256] (0..nmax) of one super-block.
void quantize_k_scales_mins(const float* x, int nmax, float rmin, float rdelta, int nstep, uint16_t* d,
                            uint16_t* dmin, uint8_t* packed, uint8_t* L) {
  float scales[8], mins[8], weights[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    // Weight each value by its magnitude plus the sub-block RMS: large values matter more,
    // but small ones are not ignored.
    float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min(32, nmax, xs, weights, L + 32 * j, &mins[j], rmin, rdelta, nstep);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(packed, 0, 12);
  for (int j = 0; j < 8; ++j) {
    uint8_t ls = uint8_t(std::min(63, nearest_int(inv_scale * scales[j])));
    uint8_t lm = uint8_t(std::min(63, nearest_int(inv_min * mins[j])));
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = uint8_t((ls & 0xF) | ((lm & 0xF) << 4));
      packed[j - 4] |= uint8_t((ls >> 4) << 6);
      packed[j] |= uint8_t((lm >> 4) << 6);
    }
  }
  *d = f32_to_f16(max_scale / 63.f);
  *dmin = f32_to_f16(max_min / 63.f);
  // Requantize against the scales and mins as a reader will see them.
  const float df = f16_to_f32(*d), dminf = f16_to_f32(*dmin);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    unpack_scale_min(j, packed, &sc, &m);
    const float ds = df * float(sc);
    if (ds == 0.0f) continue;
    const float dm = dminf * float(m);
    for (int i = 0; i < 32; ++i) L[32 * j + i] = uint8_t(std::clamp(nearest_int((x[32 * j + i] + dm) / ds), 0, nmax));
  }
}

}  // namespace

void quantize_q4_k(const float* x, BlockQ4_K* y, int64_t n) {
  uint8_t L[kQKK];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    quantize_k_scales_mins(x, 15, -1.0f, 0.1f, 20, &y[b].d, &y[b].dmin, y[b].scales, L);
    uint8_t* q = y[b].qs;
    for (int c = 0; c < kQKK; c += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = uint8_t(L[c + l] | (L[c + l + 32] << 4));
  }
}

void quantize_q5_k(const float* x, BlockQ5_K* y, int64_t n) {
  uint8_t L[kQKK];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    quantize_k_scales_mins(x, 31, -0.5f, 0.1f, 15, &y[b].d, &y[b].dmin, y[b].scales, L);
    std::memset(y[b].qh, 0, sizeof y[b].qh);
    uint8_t* ql = y[b].qs;
    uint8_t m1 = 1, m2 = 2;
    for (int c = 0; c < kQKK; c += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
      for (int l = 0; l < 32; ++l) {
        int lo = L[c + l], hi = L[c + l + 32];
        if (lo > 15) {
          lo -= 16;
          y[b].qh[l] |= m1;
        }
        if (hi > 15) {
          hi -= 16;
          y[b].qh[l] |= m2;
        }
        ql[l] = uint8_t(lo | (hi << 4));
      }
    }
  }
}

void quantize_q6_k(const float* x, BlockQ6_K* y, int64_t n) {
  int8_t L[kQKK];
  float scales[kQKK / 16];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    float max_scale = 0, max_abs_scale = 0;
    for (int s = 0; s < kQKK / 16; ++s) {
      scales[s] = fit_scale_symmetric(16, 32, x + 16 * s, L + 16 * s);
      if (std::fabs(scales[s]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[s]);
        max_scale = scales[s];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[b], 0, sizeof(BlockQ6_K));
      continue;
    }
    // The 8-bit scales are signed: map the largest to -128 (the extra negative level).
    const float iscale = -128.f / max_scale;
    y[b].d = f32_to_f16(1 / iscale);
    for (int s = 0; s < kQKK / 16; ++s) y[b].scales[s] = int8_t(std::min(127, nearest_int(iscale * scales[s])));
    const float d = f16_to_f32(y[b].d);
    for (int s = 0; s < kQKK / 16; ++s) {
      const float ds = d * float(y[b].scales[s]);
      if (ds == 0.0f) continue;
      for (int i = 0; i < 16; ++i) L[16 * s + i] = int8_t(std::clamp(nearest_int(x[16 * s + i] / ds), -32, 31) + 32);
    }
    // Per 128 values: ql[l] holds values l (low nibble) and l+64 (high), ql[l+32] values l+32
    // and l+96; qh[l] holds the top 2 bits of l, l+32, l+64, l+96 at bits 0, 2, 4, 6.
    uint8_t* ql = y[b].ql;
    uint8_t* qh = y[b].qh;
    for (int c = 0; c < kQKK; c += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q0 = L[c + l], q1 = L[c + l + 32], q2 = L[c + l + 64], q3 = L[c + l + 96];
        ql[l] = uint8_t((q0 & 0xF) | ((q2 & 0xF) << 4));
        ql[l + 32] = uint8_t((q1 & 0xF) | ((q3 & 0xF) << 4));
        qh[l] = uint8_t((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6));
      }
    }
  }
}

void dequantize_block(const BlockQ4_K& b, float* y) {
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  const uint8_t* q = b.qs;
  for (int c = 0; c < 4; ++c, q += 32, y += 64) {
    uint8_t sc, m;
    unpack_scale_min(2 * c, b.scales, &sc, &m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    unpack_scale_min(2 * c + 1, b.scales, &sc, &m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    for (int l = 0; l < 32; ++l) y[l] = d1 * float(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) y[l + 32] = d2 * float(q[l] >> 4) - m2;
  }
}

void dequantize_block(const BlockQ5_K& b, float* y) {
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  const uint8_t* ql = b.qs;
  for (int c = 0; c < 4; ++c, ql += 32, y += 64) {
    uint8_t sc, m;
    unpack_scale_min(2 * c, b.scales, &sc, &m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    unpack_scale_min(2 * c + 1, b.scales, &sc, &m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    const uint8_t u1 = uint8_t(1u << (2 * c)), u2 = uint8_t(2u << (2 * c));
    for (int l = 0; l < 32; ++l) y[l] = d1 * float((ql[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) y[l + 32] = d2 * float((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
  }
}

void dequantize_block(const BlockQ6_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  const uint8_t* ql = b.ql;
  const uint8_t* qh = b.qh;
  const int8_t* sc = b.scales;
  for (int c = 0; c < 2; ++c, ql += 64, qh += 32, sc += 8, y += 128) {
    for (int l = 0; l < 32; ++l) {
      const int s = l / 16;
      const int q0 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q1 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * float(sc[s]) * float(q0);
      y[l + 32] = d * float(sc[s + 2]) * float(q1);
      y[l + 64] = d * float(sc[s + 4]) * float(q2);
      y[l + 96] = d * float(sc[s + 6]) * float(q3);
    }
  }
}

}  // namespace brisk::quant::detail
