// Causal grouped-query attention of n new tokens against the KV cache (semantics: ops.h).
// Two passes per (query row, head): fp32 scores for the visible window, then a stable softmax
// and the probability-weighted sum of values. Parallel over query rows x heads.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/simd.h"
#include "backend/ops.h"
#include "core/thread_pool.h"

namespace brisk::ops {

void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, int64_t pos0, Tensor out,
               float scale, int window, float softcap) {
  BRISK_ASSERT(q.device == Device::CPU && k_cache.device == Device::CPU && v_cache.device == Device::CPU &&
               out.device == Device::CPU);
  BRISK_ASSERT(q.ndim() == 3 && k_cache.ndim() == 3 && v_cache.ndim() == 3 && q.shape == out.shape,
               "attention: q ", q.desc(), " k ", k_cache.desc(), " v ", v_cache.desc(), " out ", out.desc());
  BRISK_ASSERT(q.is_contiguous() && k_cache.is_contiguous() && v_cache.is_contiguous() && out.is_contiguous());
  BRISK_ASSERT(k_cache.shape == v_cache.shape, "attention: k ", k_cache.desc(), " v ", v_cache.desc());
  const int64_t n = q.dim(0), n_head = q.dim(1), hd = q.dim(2);
  const int64_t n_kv = k_cache.dim(1);
  BRISK_ASSERT(k_cache.dim(2) == hd && n_kv > 0 && n_head % n_kv == 0, "attention: ", n_head, " query heads, ",
               n_kv, " kv heads");
  BRISK_ASSERT(pos0 >= 0 && pos0 + n <= k_cache.dim(0), "attention: positions ", pos0, "..", pos0 + n - 1,
               " past cache capacity ", k_cache.dim(0));
  const int64_t group = n_head / n_kv;
  const float* qp = q.f32();
  const float* kp = k_cache.f32();
  const float* vp = v_cache.f32();
  float* op = out.f32();
  const int64_t row_stride = n_kv * hd;  // between consecutive cache positions

  // Causal rows differ in cost (row i sees pos0 + i + 1 keys), so each worker takes every
  // nw-th (row, head) item rather than one contiguous range: the load stays balanced.
  const int64_t items = n * n_head;
  const int64_t nw = std::min<int64_t>(items, num_threads());
  parallel_for(nw, 1, [&](int64_t w0, int64_t w1) {
    std::vector<float> scores;
    for (int64_t w = w0; w < w1; ++w) {
      for (int64_t t = w; t < items; t += nw) {
        const int64_t i = t / n_head, h = t % n_head, kvh = h / group;
        const int64_t p = pos0 + i;
        const int64_t lo = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;
        const int64_t len = p - lo + 1;
        const float* qv = qp + (i * n_head + h) * hd;
        const float* kbase = kp + lo * row_stride + kvh * hd;
        const float* vbase = vp + lo * row_stride + kvh * hd;
        scores.resize(size_t(len));
        float mx = -INFINITY;
        for (int64_t j = 0; j < len; ++j) {
          float s = cpu::dot(qv, kbase + j * row_stride, hd) * scale;
          if (softcap > 0.0f) s = softcap * std::tanh(s / softcap);
          scores[size_t(j)] = s;
          mx = std::max(mx, s);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < len; ++j) {
          scores[size_t(j)] = std::exp(scores[size_t(j)] - mx);
          sum += scores[size_t(j)];
        }
        float* o = op + (i * n_head + h) * hd;
        std::fill(o, o + hd, 0.0f);
        const float inv = float(1.0 / sum);
        for (int64_t j = 0; j < len; ++j) cpu::axpy(scores[size_t(j)] * inv, vbase + j * row_stride, o, hd);
      }
    }
  });
}

}  // namespace brisk::ops
