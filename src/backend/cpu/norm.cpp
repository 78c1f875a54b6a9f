// rmsnorm: out = x / sqrt(mean(x^2) + eps) * (w + offset).
// The sum of squares is accumulated in double, so the only rounding left is the final fp32
// one; PyTorch's fp32 mean differs from the exact value by a few ulp at most.
#include <algorithm>
#include <cmath>

#include "backend/ops.h"
#include "core/thread_pool.h"

namespace brisk::ops {

void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor out, float offset) {
  BRISK_ASSERT(x.device == Device::CPU && out.device == Device::CPU && w.device == Device::CPU);
  BRISK_ASSERT(x.is_contiguous() && out.is_contiguous() && x.ndim() >= 1);
  BRISK_ASSERT(x.shape == out.shape, "rmsnorm: ", x.desc(), " -> ", out.desc());
  const int64_t H = x.dim(-1), n = H ? x.numel() / H : 0;
  BRISK_ASSERT(w.numel() == H, "rmsnorm: weight ", w.desc(), " for rows of ", H);
  const float* xp = x.f32();
  const float* wp = w.f32();
  float* op = out.f32();
  parallel_for(n, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, H)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = xp + r * H;
      float* orow = op + r * H;
      double ss = 0.0;
      for (int64_t i = 0; i < H; ++i) ss += double(xr[i]) * double(xr[i]);
      // As PyTorch: variance (fp32) + eps (fp32), then rsqrt, all in fp32.
      float var = float(ss / double(H));
      float inv = float(1.0 / std::sqrt(double(var + eps)));
      for (int64_t i = 0; i < H; ++i) orow[i] = (xr[i] * inv) * (wp[i] + offset);
    }
  });
}

}  // namespace brisk::ops
