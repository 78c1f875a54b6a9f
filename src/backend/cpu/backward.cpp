// Backward passes of the pointwise and linear ops (semantics: backend/ops.h, "Training ops").
// Sums over rows (weight and bias gradients) run in double or through BLAS sgemm; every
// parallel loop gives each thread its own output elements, so results do not depend on the
// thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "backend/cpu/cpu_backward.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"
#include "core/thread_pool.h"

#ifdef BRISK_HAVE_BLAS
#include <cblas.h>
#endif

namespace brisk::ops {
namespace {

constexpr int64_t kElementGrain = 1 << 15;  // elements per task for memory-bound loops

void check_f32(const char* op, const Tensor& t) {
  BRISK_ASSERT(t.device == Device::CPU && t.dtype == DType::F32 && t.is_contiguous(), op, ": ", t.desc());
}

// Rows per task so that one task touches about `elements` floats.
int64_t row_grain(int64_t width, int64_t elements = 16384) {
  return std::max<int64_t>(1, elements / std::max<int64_t>(1, width));
}

struct Dims {
  int64_t n, N, K;
};

// dy [n, N] with w or x [*, K] and the gradient [*, K] or [N, K]: leading dims of dy flatten.
Dims matmul_bwd_dims(const char* op, const Tensor& dy, const Tensor& other, const Tensor& grad, bool grad_is_dw) {
  check_f32(op, dy);
  check_f32(op, other);
  check_f32(op, grad);
  BRISK_ASSERT(dy.ndim() >= 1 && other.ndim() >= 1 && grad.ndim() >= 1, op);
  Dims d{0, dy.dim(-1), other.dim(-1)};
  BRISK_ASSERT(d.N > 0 && d.K > 0, op, ": empty matrix dimension, dy ", dy.desc(), " and ", other.desc());
  d.n = dy.numel() / d.N;
  if (grad_is_dw) {  // other = x [n, K], grad = dw [N, K]
    BRISK_ASSERT(other.numel() == d.n * d.K && grad.ndim() == 2 && grad.dim(0) == d.N && grad.dim(1) == d.K, op,
                 ": dy ", dy.desc(), " x ", other.desc(), " dw ", grad.desc());
  } else {  // other = w [N, K], grad = dx [n, K]
    BRISK_ASSERT(other.ndim() == 2 && other.dim(0) == d.N && grad.dim(-1) == d.K && grad.numel() == d.n * d.K, op,
                 ": dy ", dy.desc(), " w ", other.desc(), " dx ", grad.desc());
  }
  BRISK_ASSERT(d.n <= INT32_MAX && d.N <= INT32_MAX && d.K <= INT32_MAX, op, " too large");
  return d;
}

// dst [cols, rows] = src [rows, cols]^T, in cache-sized tiles.
void transpose(const float* src, int64_t rows, int64_t cols, float* dst) {
  constexpr int64_t B = 32;
  const int64_t col_blocks = (cols + B - 1) / B;
  parallel_for(col_blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t cb = b0; cb < b1; ++cb) {
      const int64_t c0 = cb * B, c1 = std::min(cols, c0 + B);
      for (int64_t r0 = 0; r0 < rows; r0 += B)
        for (int64_t c = c0; c < c1; ++c)
          for (int64_t r = r0; r < std::min(rows, r0 + B); ++r) dst[c * rows + r] = src[r * cols + c];
    }
  });
}

// out[i] (+)= sum over rows r of a[r, i] (* b[r, i]) (* row_scale[r]), in double, parallel over
// column chunks so that each thread owns its outputs and reads rows contiguously.
void column_sums(const float* a, const float* b, const double* row_scale, int64_t rows, int64_t cols, float* out,
                 bool accumulate) {
  constexpr int64_t kCols = 256;
  parallel_for((cols + kCols - 1) / kCols, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, rows)),
               [&](int64_t c0, int64_t c1) {
                 double acc[kCols];
                 for (int64_t cb = c0; cb < c1; ++cb) {
                   const int64_t j0 = cb * kCols, w = std::min(kCols, cols - j0);
                   std::fill(acc, acc + w, 0.0);
                   for (int64_t r = 0; r < rows; ++r) {
                     const float* ar = a + r * cols + j0;
                     const float* br = b ? b + r * cols + j0 : nullptr;
                     const double s = row_scale ? row_scale[r] : 1.0;
                     if (br)
                       for (int64_t j = 0; j < w; ++j) acc[j] += double(ar[j]) * double(br[j]) * s;
                     else
                       for (int64_t j = 0; j < w; ++j) acc[j] += double(ar[j]) * s;
                   }
                   float* o = out + j0;
                   for (int64_t j = 0; j < w; ++j) o[j] = accumulate ? float(double(o[j]) + acc[j]) : float(acc[j]);
                 }
               });
}

}  // namespace

// ---- matmul ---------------------------------------------------------------------------------

namespace cpu {

// dx = dy @ w = dy @ (w^T)^T: matmul_fallback(dy, w^T).
void matmul_backward_x_fallback(const Tensor& dy, const Tensor& w, Tensor dx, bool accumulate) {
  Dims d = matmul_bwd_dims("matmul_backward_x", dy, w, dx, false);
  if (d.n == 0) return;
  std::vector<float> wt(static_cast<size_t>(d.N * d.K));
  transpose(w.f32(), d.N, d.K, wt.data());
  matmul_fallback(dy.reshape({d.n, d.N}), Tensor(wt.data(), DType::F32, {d.K, d.N}), Tensor(),
                  dx.reshape({d.n, d.K}), accumulate);
}

// dw = dy^T @ x = dy^T @ (x^T)^T: matmul_fallback(dy^T, x^T).
void matmul_backward_w_fallback(const Tensor& dy, const Tensor& x, Tensor dw, bool accumulate) {
  Dims d = matmul_bwd_dims("matmul_backward_w", dy, x, dw, true);
  if (d.n == 0) {  // an empty sum (matmul_fallback needs a nonzero inner dimension)
    if (!accumulate) std::memset(dw.data, 0, dw.nbytes());
    return;
  }
  std::vector<float> dyt(size_t(d.N * d.n)), xt(size_t(d.K * d.n));
  transpose(dy.f32(), d.n, d.N, dyt.data());
  transpose(x.f32(), d.n, d.K, xt.data());
  matmul_fallback(Tensor(dyt.data(), DType::F32, {d.N, d.n}), Tensor(xt.data(), DType::F32, {d.K, d.n}), Tensor(),
                  dw, accumulate);
}

}  // namespace cpu

void matmul_backward_x(const Tensor& dy, const Tensor& w, Tensor dx, bool accumulate) {
#ifdef BRISK_HAVE_BLAS
  Dims d = matmul_bwd_dims("matmul_backward_x", dy, w, dx, false);
  if (d.n == 0) return;
  // dx [n, K] = dy [n, N] @ w [N, K]
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(d.n), int(d.K), int(d.N), 1.0f, dy.f32(), int(d.N),
              w.f32(), int(d.K), accumulate ? 1.0f : 0.0f, dx.f32(), int(d.K));
#else
  cpu::matmul_backward_x_fallback(dy, w, dx, accumulate);
#endif
}

void matmul_backward_w(const Tensor& dy, const Tensor& x, Tensor dw, bool accumulate) {
#ifdef BRISK_HAVE_BLAS
  Dims d = matmul_bwd_dims("matmul_backward_w", dy, x, dw, true);
  if (d.n == 0) {  // an empty sum
    if (!accumulate) std::memset(dw.data, 0, dw.nbytes());
    return;
  }
  // dw [N, K] = dy^T [N, n] @ x [n, K]
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(d.N), int(d.K), int(d.n), 1.0f, dy.f32(), int(d.N),
              x.f32(), int(d.K), accumulate ? 1.0f : 0.0f, dw.f32(), int(d.K));
#else
  cpu::matmul_backward_w_fallback(dy, x, dw, accumulate);
#endif
}

void bias_backward(const Tensor& dy, Tensor db, bool accumulate) {
  check_f32("bias_backward", dy);
  check_f32("bias_backward", db);
  const int64_t N = db.numel();
  BRISK_ASSERT(dy.ndim() >= 1 && dy.dim(-1) == N, "bias_backward: dy ", dy.desc(), " db ", db.desc());
  column_sums(dy.f32(), nullptr, nullptr, N ? dy.numel() / N : 0, N, db.f32(), accumulate);
}

// ---- rmsnorm --------------------------------------------------------------------------------

// y = x * r * g with r = 1 / sqrt(mean(x^2) + eps), g = w + offset. Per row, with gy = dy * g:
//   dx = r * gy - x * r^3 * sum(gy * x) / H,     dw = sum over rows of dy * x * r.
// r and the row sums are computed in double. dw is summed first, so dx may alias dy.
void rmsnorm_backward(const Tensor& x, const Tensor& w, float eps, float offset, const Tensor& dy, Tensor dx,
                      Tensor dw, bool accumulate) {
  check_f32("rmsnorm_backward", x);
  check_f32("rmsnorm_backward", w);
  check_f32("rmsnorm_backward", dy);
  check_f32("rmsnorm_backward", dx);
  BRISK_ASSERT(x.ndim() >= 1 && dy.shape == x.shape && dx.shape == x.shape, "rmsnorm_backward: x ", x.desc(),
               " dy ", dy.desc(), " dx ", dx.desc());
  const int64_t H = x.dim(-1), n = H ? x.numel() / H : 0;
  BRISK_ASSERT(w.numel() == H, "rmsnorm_backward: weight ", w.desc(), " for rows of ", H);
  const float* xp = x.f32();
  const float* wp = w.f32();
  const float* dyp = dy.f32();
  float* dxp = dx.f32();

  std::vector<double> inv_rms(static_cast<size_t>(n));
  parallel_for(n, row_grain(H), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      double ss = 0.0;
      for (int64_t k = 0; k < H; ++k) ss += double(xp[i * H + k]) * double(xp[i * H + k]);
      inv_rms[size_t(i)] = 1.0 / std::sqrt(ss / double(H) + double(eps));
    }
  });
  if (dw.defined()) {
    check_f32("rmsnorm_backward", dw);
    BRISK_ASSERT(dw.numel() == H, "rmsnorm_backward: dw ", dw.desc());
    column_sums(dyp, xp, inv_rms.data(), n, H, dw.f32(), accumulate);
  }
  parallel_for(n, row_grain(H), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const float* xr = xp + i * H;
      const float* dyr = dyp + i * H;
      float* dxr = dxp + i * H;
      double gx = 0.0;
      for (int64_t k = 0; k < H; ++k) gx += double(dyr[k]) * (double(wp[k]) + offset) * double(xr[k]);
      const double ri = inv_rms[size_t(i)], c = ri * ri * ri * gx / double(H);
      for (int64_t k = 0; k < H; ++k) {
        const double g = ri * double(dyr[k]) * (double(wp[k]) + offset) - c * double(xr[k]);
        dxr[k] = accumulate ? float(double(dxr[k]) + g) : float(g);
      }
    }
  });
}

// ---- rope -----------------------------------------------------------------------------------

// rope multiplies each (i, i + half) pair by mscale * [[c, -s], [s, c]]; the gradient goes
// through the transpose, mscale * [[c, s], [-s, c]]: the same rotation with s negated.
void rope_backward(Tensor dx, const int32_t* positions, const float* inv_freq, int n_freq, float mscale) {
  cpu::rotate_pairs(dx, positions, inv_freq, n_freq, mscale, -1.0f);
}

// ---- swiglu ---------------------------------------------------------------------------------

// out = g * sig(g) * u:  dup = dout * g * sig(g),  dgate = dout * u * sig(g) * (1 + g * (1 - sig(g))).
// Each element's inputs are read before its outputs are written, so dgate/dup may alias inputs.
void swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout, Tensor dgate, Tensor dup) {
  for (const Tensor* t : std::initializer_list<const Tensor*>{&gate, &up, &dout, &dgate, &dup}) {
    check_f32("swiglu_backward", *t);
    BRISK_ASSERT(t->numel() == gate.numel(), "swiglu_backward: ", gate.desc(), " vs ", t->desc());
  }
  const float* g = gate.f32();
  const float* u = up.f32();
  const float* d = dout.f32();
  float* dg = dgate.f32();
  float* du = dup.f32();
  parallel_for(gate.numel(), kElementGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float gi = g[i], ui = u[i], di = d[i];
      const float sig = 1.0f / (1.0f + std::exp(-gi));
      du[i] = di * gi * sig;
      dg[i] = di * ui * sig * (1.0f + gi * (1.0f - sig));
    }
  });
}

// ---- embedding ------------------------------------------------------------------------------

// Repeated ids add into the same row, so threads split the columns, never the ids: the result
// is race-free and independent of the thread count.
void embedding_backward(const int32_t* ids, int64_t n, const Tensor& dout, Tensor dtable) {
  check_f32("embedding_backward", dout);
  check_f32("embedding_backward", dtable);
  BRISK_ASSERT(dtable.ndim() == 2, "embedding_backward: dtable ", dtable.desc());
  const int64_t V = dtable.dim(0), H = dtable.dim(1);
  BRISK_ASSERT(dout.numel() == n * H, "embedding_backward: dout ", dout.desc(), " for ", n, " ids of width ", H);
  for (int64_t i = 0; i < n; ++i)
    BRISK_CHECK(ids[i] >= 0 && ids[i] < V, "token id ", ids[i], " (position ", i,
                ") is out of range for the embedding table of vocabulary size ", V);
  const float* dp = dout.f32();
  float* tp = dtable.f32();
  constexpr int64_t kCols = 64;
  parallel_for((H + kCols - 1) / kCols, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, n)),
               [&](int64_t c0, int64_t c1) {
                 const int64_t j0 = c0 * kCols, j1 = std::min(H, c1 * kCols);
                 for (int64_t i = 0; i < n; ++i) {
                   const float* src = dp + i * H;
                   float* dst = tp + int64_t(ids[i]) * H;
                   for (int64_t j = j0; j < j1; ++j) dst[j] += src[j];
                 }
               });
}

// ---- scale ----------------------------------------------------------------------------------

void scale(const Tensor& a, float s, Tensor out) {
  check_f32("scale", a);
  check_f32("scale", out);
  BRISK_ASSERT(a.numel() == out.numel(), "scale: ", a.desc(), " -> ", out.desc());
  const float* ap = a.f32();
  float* op = out.f32();
  parallel_for(a.numel(), kElementGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) op[i] = ap[i] * s;
  });
}

}  // namespace brisk::ops
