// matmul: out = x @ w^T (+ bias), the op that dominates both prefill and decode.
// n > 1: OpenBLAS sgemm when available, else a blocked, register-tiled, multithreaded kernel.
// n == 1 (decode): a GEMV parallel over output rows; it streams w once, which is the whole cost.
// Block-quantized w (Q8_0, Q4_K, ...): matmul_quantized below.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/simd.h"
#include "backend/ops.h"
#include "backend/quant.h"
#include "core/thread_pool.h"

#ifdef BRISK_HAVE_BLAS
#include <cblas.h>
#endif

namespace brisk::ops {
namespace cpu {
namespace {

struct MatmulDims {
  int64_t n, K, N;
};

MatmulDims check_matmul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) {
  BRISK_ASSERT(x.device == Device::CPU && w.device == Device::CPU && out.device == Device::CPU);
  BRISK_ASSERT(x.dtype == DType::F32 && w.dtype == DType::F32 && out.dtype == DType::F32,
               "matmul: ", x.desc(), " @ ", w.desc(), "^T -> ", out.desc());
  BRISK_ASSERT(x.is_contiguous() && w.is_contiguous() && out.is_contiguous());
  BRISK_ASSERT(w.ndim() == 2 && x.ndim() >= 1 && out.ndim() >= 1);
  MatmulDims d{0, w.dim(0), w.dim(1)};
  d.K = w.dim(1);
  d.N = w.dim(0);
  BRISK_ASSERT(x.dim(-1) == d.K, "matmul: x ", x.desc(), " vs w ", w.desc());
  d.n = x.numel() / d.K;
  BRISK_ASSERT(out.dim(-1) == d.N && out.numel() == d.n * d.N, "matmul: out ", out.desc(), " for x ",
               x.desc(), " and w ", w.desc());
  if (bias.defined()) {
    BRISK_ASSERT(bias.dtype == DType::F32 && bias.numel() == d.N, "matmul: bias ", bias.desc());
  }
  return d;
}

// Sets (or, accumulating, adds) the bias to every row of out before the product is added.
void init_out(float* out, const float* bias, const MatmulDims& d, bool accumulate) {
  if (!accumulate && !bias) {
    std::memset(out, 0, size_t(d.n * d.N) * sizeof(float));
    return;
  }
  if (!bias) return;
  for (int64_t i = 0; i < d.n; ++i) {
    float* o = out + i * d.N;
    if (accumulate)
      for (int64_t j = 0; j < d.N; ++j) o[j] += bias[j];
    else
      std::memcpy(o, bias, size_t(d.N) * sizeof(float));
  }
}

// ---- blocked fallback GEMM -------------------------------------------------------------
// c[r * ldc + s] += sum_{k < kc} a[r * lda + k] * b[s * ldb + k] over an MR x NR tile. With
// AVX2 the 3x4 tile keeps 12 accumulators + 3 rows of a + 1 of b in the 16 ymm registers.
constexpr int64_t MR = 3, NR = 4;
constexpr int64_t MC = 48, NC = 64, KC = 512;  // a block: 48 x 512 floats (96 KiB), b: 64 x 512

void tile_kernel(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t kc, float* c,
                 int64_t ldc) {
  int64_t k = 0;
#ifdef BRISK_CPU_AVX2
  __m256 acc[MR][NR];
  for (auto& row : acc)
    for (auto& v : row) v = _mm256_setzero_ps();
  for (; k + 8 <= kc; k += 8) {
    __m256 av[MR];
    for (int64_t r = 0; r < MR; ++r) av[r] = _mm256_loadu_ps(a + r * lda + k);
    for (int64_t s = 0; s < NR; ++s) {
      __m256 bv = _mm256_loadu_ps(b + s * ldb + k);
      for (int64_t r = 0; r < MR; ++r) acc[r][s] = _mm256_fmadd_ps(av[r], bv, acc[r][s]);
    }
  }
  for (int64_t r = 0; r < MR; ++r)
    for (int64_t s = 0; s < NR; ++s) c[r * ldc + s] += hsum(acc[r][s]);
#endif
  if (k == kc) return;
  for (int64_t r = 0; r < MR; ++r)
    for (int64_t s = 0; s < NR; ++s) c[r * ldc + s] += dot(a + r * lda + k, b + s * ldb + k, kc - k);
}

}  // namespace

bool have_blas() {
#ifdef BRISK_HAVE_BLAS
  return true;
#else
  return false;
#endif
}

void gemv(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor out, bool accumulate) {
  MatmulDims d = check_matmul(x, w, bias, out);
  BRISK_ASSERT(d.n == 1, "gemv needs one row, got ", x.desc());
  const float* xp = x.f32();
  const float* wp = w.f32();
  const float* bp = bias.defined() ? bias.f32() : nullptr;
  float* op = out.f32();
  // ~64 KiB of weights per chunk: enough to amortise scheduling, small enough to balance.
  int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, d.K));
  parallel_for(d.N, grain, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      float v = dot(xp, wp + j * d.K, d.K);
      if (bp) v += bp[j];
      op[j] = accumulate ? op[j] + v : v;
    }
  });
}

void matmul_fallback(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor out, bool accumulate) {
  MatmulDims d = check_matmul(x, w, bias, out);
  if (d.n == 1) return gemv(x, w, bias, out, accumulate);
  const float* xp = x.f32();
  const float* wp = w.f32();
  float* op = out.f32();
  init_out(op, bias.defined() ? bias.f32() : nullptr, d, accumulate);
  int64_t mb = (d.n + MC - 1) / MC, nb = (d.N + NC - 1) / NC;
  // Each task owns one MC x NC block of out, so no two threads write the same element.
  parallel_for(mb * nb, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t i0 = (t / nb) * MC, i1 = std::min(d.n, i0 + MC);
      int64_t j0 = (t % nb) * NC, j1 = std::min(d.N, j0 + NC);
      for (int64_t k0 = 0; k0 < d.K; k0 += KC) {
        int64_t kc = std::min(KC, d.K - k0);
        for (int64_t i = i0; i < i1; i += MR) {
          for (int64_t j = j0; j < j1; j += NR) {
            const float* a = xp + i * d.K + k0;
            const float* b = wp + j * d.K + k0;
            float* c = op + i * d.N + j;
            if (i + MR <= i1 && j + NR <= j1) {
              tile_kernel(a, d.K, b, d.K, kc, c, d.N);
              continue;
            }
            for (int64_t r = 0; r < std::min(MR, i1 - i); ++r)  // ragged edge tile
              for (int64_t s = 0; s < std::min(NR, j1 - j); ++s)
                c[r * d.N + s] += dot(a + r * d.K, b + s * d.K, kc);
          }
        }
      }
    }
  });
}

void matmul_quantized(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor out, bool accumulate) {
  BRISK_ASSERT(x.device == Device::CPU && w.device == Device::CPU && out.device == Device::CPU);
  BRISK_ASSERT(dtype_is_quantized(w.dtype) && x.dtype == DType::F32 && out.dtype == DType::F32,
               "matmul_quantized: ", x.desc(), " @ ", w.desc(), "^T -> ", out.desc());
  BRISK_ASSERT(x.is_contiguous() && out.is_contiguous() && w.ndim() == 2);
  MatmulDims d{0, w.dim(1), w.dim(0)};
  BRISK_ASSERT(d.K % dtype_block_elems(w.dtype) == 0, "matmul_quantized: ", w.desc(), " rows are not whole blocks");
  BRISK_ASSERT(x.dim(-1) == d.K, "matmul_quantized: x ", x.desc(), " vs w ", w.desc());
  d.n = x.numel() / d.K;
  BRISK_ASSERT(out.dim(-1) == d.N && out.numel() == d.n * d.N, "matmul_quantized: out ", out.desc());
  if (bias.defined()) BRISK_ASSERT(bias.dtype == DType::F32 && bias.numel() == d.N, "matmul: bias ", bias.desc());
  const float* xp = x.f32();
  const float* bp = bias.defined() ? bias.f32() : nullptr;
  float* op = out.f32();
  const char* wp = static_cast<const char*>(w.data);
  const size_t row_bytes = dtype_row_bytes(w.dtype, d.K);

  if (d.n == 1) {
    // Decode: one pass over the quantized weights, each row dotted straight from its blocks.
    int64_t grain = std::max<int64_t>(1, int64_t(16384 / row_bytes));
    parallel_for(d.N, grain, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        float v = quant::dot_row(w.dtype, wp + size_t(j) * row_bytes, xp, d.K);
        if (bp) v += bp[j];
        op[j] = accumulate ? op[j] + v : v;
      }
    });
    return;
  }
  // Prefill: dequantize a band of weight rows (~4 MiB of f32) and multiply it with every row of
  // x, so the dequantization is paid once per weight, not once per token.
  init_out(op, bp, d, accumulate);
  const int64_t band = std::clamp<int64_t>((int64_t(1) << 20) / d.K, 1, d.N);
  std::vector<float> wf(size_t(band * d.K));
  for (int64_t j0 = 0; j0 < d.N; j0 += band) {
    const int64_t nb = std::min(band, d.N - j0);
    parallel_for(nb, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        quant::dequantize_row(w.dtype, wp + size_t(j0 + r) * row_bytes, wf.data() + r * d.K, d.K);
    });
#ifdef BRISK_HAVE_BLAS
    BRISK_ASSERT(d.n <= INT32_MAX && d.N <= INT32_MAX && d.K <= INT32_MAX, "matmul too large for BLAS");
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(d.n), int(nb), int(d.K), 1.0f, xp, int(d.K),
                wf.data(), int(d.K), 1.0f, op + j0, int(d.N));
#else
    parallel_for(d.n, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t r = 0; r < nb; ++r) op[i * d.N + j0 + r] += dot(xp + i * d.K, wf.data() + r * d.K, d.K);
    });
#endif
  }
}

}  // namespace cpu

void matmul(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor out, bool accumulate) {
  if (dtype_is_quantized(w.dtype)) return cpu::matmul_quantized(x, w, bias, out, accumulate);
#ifdef BRISK_HAVE_BLAS
  cpu::MatmulDims d = cpu::check_matmul(x, w, bias, out);
  if (d.n == 1) return cpu::gemv(x, w, bias, out, accumulate);
  BRISK_ASSERT(d.n <= INT32_MAX && d.N <= INT32_MAX && d.K <= INT32_MAX, "matmul too large for BLAS");
  float* op = out.f32();
  if (bias.defined()) cpu::init_out(op, bias.f32(), d, accumulate);  // sgemm then adds onto it
  float beta = (accumulate || bias.defined()) ? 1.0f : 0.0f;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(d.n), int(d.N), int(d.K), 1.0f, x.f32(),
              int(d.K), w.f32(), int(d.K), beta, op, int(d.N));
#else
  cpu::matmul_fallback(x, w, bias, out, accumulate);
#endif
}

}  // namespace brisk::ops
