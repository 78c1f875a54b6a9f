// Rotary position embedding, Hugging Face "rotate_half" layout: element i of a head pairs with
// element i + rot/2. The angle is float(pos) * inv_freq[i] rounded to fp32 exactly as
// transformers computes it; cos/sin of that fp32 angle are evaluated in double and rounded once,
// so positions in the hundreds of thousands keep full fp32 accuracy.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"
#include "core/thread_pool.h"

namespace brisk::ops {

// Rotates every (i, i + half) pair by mscale * [[c, -sign*s], [sign*s, c]]: sign +1 is the
// forward rotation, -1 its transpose (the gradient). Negating s is exact, so the backward pass
// uses bit-for-bit the same cos/sin as the forward.
void cpu::rotate_pairs(Tensor x, const int32_t* positions, const float* inv_freq, int n_freq, float mscale,
                       float sign) {
  BRISK_ASSERT(x.device == Device::CPU && x.is_contiguous() && x.ndim() == 3, "rope: ", x.desc());
  const int64_t n = x.dim(0), heads = x.dim(1), hd = x.dim(2);
  BRISK_ASSERT(n_freq >= 0 && 2 * int64_t(n_freq) <= hd, "rope: ", n_freq, " frequencies for head_dim ", hd);
  float* xp = x.f32();
  const int64_t half = n_freq;
  parallel_for(n, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> cs(size_t(2 * half));
    for (int64_t t = t0; t < t1; ++t) {
      const float pos = float(positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        const float angle = pos * inv_freq[i];
        cs[size_t(i)] = float(std::cos(double(angle))) * mscale;
        cs[size_t(half + i)] = sign * (float(std::sin(double(angle))) * mscale);
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = xp + (t * heads + h) * hd;
        for (int64_t i = 0; i < half; ++i) {
          const float c = cs[size_t(i)], s = cs[size_t(half + i)];
          const float a = v[i], b = v[i + half];
          v[i] = a * c - b * s;         // x * cos + rotate_half(x) * sin, first half
          v[i + half] = b * c + a * s;  // second half
        }
      }
    }
  });
}

void rope(Tensor x, const int32_t* positions, const float* inv_freq, int n_freq, float mscale) {
  cpu::rotate_pairs(x, positions, inv_freq, n_freq, mscale, 1.0f);
}

}  // namespace brisk::ops
