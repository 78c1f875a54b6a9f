// Small vector kernels shared by the CPU ops. AVX2+FMA when the compiler targets it (the
// default build passes -mavx2 -mfma), a portable scalar version otherwise. Sums are fp32 with
// several independent accumulators: faster, and no less accurate than one serial sum.
#pragma once
#include <cstdint>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define BRISK_CPU_AVX2 1
#endif

namespace brisk::ops::cpu {

#ifdef BRISK_CPU_AVX2
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

// sum_k a[k] * b[k]
inline float dot(const float* a, const float* b, int64_t n) {
  int64_t k = 0;
  float s = 0.0f;
#ifdef BRISK_CPU_AVX2
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps();
  for (; k + 32 <= n; k += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 16), _mm256_loadu_ps(b + k + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 24), _mm256_loadu_ps(b + k + 24), a3);
  }
  for (; k + 8 <= n; k += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), a0);
  s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
#else
  float acc[8] = {};
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[k + j] * b[k + j];
  for (int j = 0; j < 8; ++j) s += acc[j];
#endif
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

// y[k] += alpha * x[k]
inline void axpy(float alpha, const float* x, float* y, int64_t n) {
  int64_t k = 0;
#ifdef BRISK_CPU_AVX2
  __m256 va = _mm256_set1_ps(alpha);
  for (; k + 8 <= n; k += 8)
    _mm256_storeu_ps(y + k, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k)));
#endif
  for (; k < n; ++k) y[k] += alpha * x[k];
}

// y[k] *= alpha
inline void scale(float alpha, float* y, int64_t n) {
  for (int64_t k = 0; k < n; ++k) y[k] *= alpha;
}

}  // namespace brisk::ops::cpu
