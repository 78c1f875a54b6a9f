// Elementwise ops and row softmax. Memory-bound: simple loops the compiler vectorises, split
// over threads only when the tensor is large enough to pay for it.
#include <algorithm>
#include <cmath>

#include "backend/ops.h"
#include "core/thread_pool.h"

namespace brisk::ops {
namespace {

constexpr int64_t kElementGrain = 1 << 15;  // elements per task

void check_same(const char* op, const Tensor& a, const Tensor& b) {
  BRISK_ASSERT(a.device == Device::CPU && b.device == Device::CPU && a.is_contiguous() && b.is_contiguous(),
               op, ": ", a.desc(), ", ", b.desc());
  BRISK_ASSERT(a.numel() == b.numel() && a.dtype == DType::F32 && b.dtype == DType::F32, op, ": ", a.desc(),
               " vs ", b.desc());
}

}  // namespace

void swiglu(const Tensor& gate, const Tensor& up, Tensor out) {
  check_same("swiglu", gate, up);
  check_same("swiglu", gate, out);
  const float* g = gate.f32();
  const float* u = up.f32();
  float* o = out.f32();
  parallel_for(gate.numel(), kElementGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];  // silu(g) * up
  });
}

void add(const Tensor& a, const Tensor& b, Tensor out) {
  check_same("add", a, b);
  check_same("add", a, out);
  const float* ap = a.f32();
  const float* bp = b.f32();
  float* o = out.f32();
  parallel_for(a.numel(), kElementGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) o[i] = ap[i] + bp[i];
  });
}

// A row whose entries are all -inf becomes NaN, as in PyTorch.
void softmax_rows(Tensor x) {
  BRISK_ASSERT(x.device == Device::CPU && x.is_contiguous() && x.ndim() >= 1, "softmax_rows: ", x.desc());
  const int64_t m = x.dim(-1), n = m ? x.numel() / m : 0;
  float* xp = x.f32();
  parallel_for(n, std::max<int64_t>(1, kElementGrain / std::max<int64_t>(1, m)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = xp + r * m;
      float mx = -INFINITY;
      for (int64_t i = 0; i < m; ++i) mx = std::max(mx, row[i]);
      double sum = 0.0;
      for (int64_t i = 0; i < m; ++i) {
        row[i] = std::exp(row[i] - mx);
        sum += row[i];
      }
      const float inv = float(1.0 / sum);
      for (int64_t i = 0; i < m; ++i) row[i] *= inv;
    }
  });
}

}  // namespace brisk::ops
