// Attention for training over a packed batch of variable-length sequences (semantics: ops.h).
//
// Forward: per (query row, head), the same arithmetic as the inference attention() on that
// segment (fp32 scores, fp32 exp, double sum), so training and inference agree bit for bit;
// it also saves lse = max + log(sum), the log-sum-exp of the scaled scores.
//
// Backward (as FlashAttention): with P = exp(S - lse) recomputed from q, k and lse,
//   dV = P^T dO,  dP = dO V^T,  D = rowsum(dO * O),  dS = P * (dP - D),
//   dQ = scale * dS K,  dK = scale * dS^T Q.
// Nothing of size T x T is stored. Two passes keep every thread on its own outputs: pass 1
// runs over (query row, head) and writes dQ (and D); pass 2 runs over (key row, kv head) and
// sums dK, dV over every query row that sees the key and every query head of the kv head's
// group (GQA). Each pass recomputes its row of P; sums over rows are kept in double.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

#include "backend/cpu/simd.h"
#include "backend/ops.h"
#include "core/thread_pool.h"

namespace brisk::ops {
namespace {

struct Layout {
  int64_t T, n_head, n_kv, hd, group;
  std::vector<int64_t> seg_begin, seg_end;  // per token: its segment's rows [begin, end)
};

Layout check_layout(const Tensor& q, const Tensor& k, const Tensor& v, const int32_t* cu_seqlens, int n_seg) {
  for (const Tensor* t : {&q, &k, &v})
    BRISK_ASSERT(t->device == Device::CPU && t->dtype == DType::F32 && t->is_contiguous() && t->ndim() == 3,
                 "attention_train: ", t->desc());
  Layout L{q.dim(0), q.dim(1), k.dim(1), q.dim(2), 0, {}, {}};
  BRISK_ASSERT(k.shape == v.shape && k.dim(0) == L.T && k.dim(2) == L.hd && L.n_kv > 0 && L.n_head % L.n_kv == 0,
               "attention_train: q ", q.desc(), " k ", k.desc(), " v ", v.desc());
  L.group = L.n_head / L.n_kv;
  BRISK_ASSERT(n_seg >= 0 && cu_seqlens[0] == 0 && cu_seqlens[n_seg] == L.T, "attention_train: cu_seqlens span 0..",
               cu_seqlens[n_seg], " for ", L.T, " tokens");
  L.seg_begin.resize(size_t(L.T));
  L.seg_end.resize(size_t(L.T));
  for (int s = 0; s < n_seg; ++s) {
    BRISK_ASSERT(cu_seqlens[s] <= cu_seqlens[s + 1], "attention_train: cu_seqlens decrease at segment ", s);
    for (int64_t t = cu_seqlens[s]; t < cu_seqlens[s + 1]; ++t) {
      L.seg_begin[size_t(t)] = cu_seqlens[s];
      L.seg_end[size_t(t)] = cu_seqlens[s + 1];
    }
  }
  return L;
}

// First key row query row t sees: its segment start, or the window's start.
int64_t first_key(const Layout& L, int64_t t, int window) {
  const int64_t b = L.seg_begin[size_t(t)];
  return window > 0 ? std::max(b, t - window + 1) : b;
}
// One past the last query row that sees key row j.
int64_t last_query_end(const Layout& L, int64_t j, int window) {
  const int64_t e = L.seg_end[size_t(j)];
  return window > 0 ? std::min(e, j + window) : e;
}

// fn(item, scratch) for every item in [0, items). Causal rows differ in cost, so each of nw
// workers takes every nw-th item (as attention() does); each worker has its own scratch vector.
template <typename T, typename Fn>
void for_items_strided(int64_t items, const Fn& fn) {
  const int64_t nw = std::min<int64_t>(items, num_threads());
  parallel_for(nw, 1, [&](int64_t w0, int64_t w1) {
    std::vector<T> scratch;
    for (int64_t w = w0; w < w1; ++w)
      for (int64_t it = w; it < items; it += nw) fn(it, scratch);
  });
}

void add_scaled(double alpha, const float* x, double* acc, int64_t n) {
  for (int64_t e = 0; e < n; ++e) acc[e] += alpha * double(x[e]);
}

}  // namespace

void attention_train_forward(const Tensor& q, const Tensor& k, const Tensor& v, const int32_t* cu_seqlens, int n_seg,
                             Tensor out, Tensor lse, float scale, int window) {
  const Layout L = check_layout(q, k, v, cu_seqlens, n_seg);
  BRISK_ASSERT(out.shape == q.shape && out.is_contiguous() && out.dtype == DType::F32, "attention_train_forward: out ",
               out.desc());
  BRISK_ASSERT(lse.numel() == L.T * L.n_head && lse.is_contiguous() && lse.dtype == DType::F32,
               "attention_train_forward: lse ", lse.desc());
  const float* qp = q.f32();
  const float* kp = k.f32();
  const float* vp = v.f32();
  float* op = out.f32();
  float* lp = lse.f32();
  const int64_t kv_stride = L.n_kv * L.hd, hd = L.hd;
  for_items_strided<float>(L.T * L.n_head, [&](int64_t it, std::vector<float>& scores) {
    const int64_t t = it / L.n_head, h = it % L.n_head, kvh = h / L.group;
    const int64_t lo = first_key(L, t, window), len = t - lo + 1;
    const float* qv = qp + (t * L.n_head + h) * hd;
    const float* kbase = kp + lo * kv_stride + kvh * hd;
    const float* vbase = vp + lo * kv_stride + kvh * hd;
    scores.resize(size_t(len));
    float mx = -INFINITY;
    for (int64_t j = 0; j < len; ++j) {
      scores[size_t(j)] = cpu::dot(qv, kbase + j * kv_stride, hd) * scale;
      mx = std::max(mx, scores[size_t(j)]);
    }
    double sum = 0.0;
    for (int64_t j = 0; j < len; ++j) {
      scores[size_t(j)] = std::exp(scores[size_t(j)] - mx);
      sum += scores[size_t(j)];
    }
    float* o = op + (t * L.n_head + h) * hd;
    std::fill(o, o + hd, 0.0f);
    const float inv = float(1.0 / sum);
    for (int64_t j = 0; j < len; ++j) cpu::axpy(scores[size_t(j)] * inv, vbase + j * kv_stride, o, hd);
    lp[t * L.n_head + h] = float(double(mx) + std::log(sum));
  });
}

void attention_train_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& dout, const int32_t* cu_seqlens, int n_seg, Tensor dq, Tensor dk, Tensor dv,
                              float scale, int window) {
  const Layout L = check_layout(q, k, v, cu_seqlens, n_seg);
  for (const Tensor* t : std::initializer_list<const Tensor*>{&out, &dout, &dq})
    BRISK_ASSERT(t->shape == q.shape && t->is_contiguous() && t->dtype == DType::F32, "attention_train_backward: ",
                 t->desc(), " for q ", q.desc());
  for (const Tensor* t : std::initializer_list<const Tensor*>{&dk, &dv})
    BRISK_ASSERT(t->shape == k.shape && t->is_contiguous() && t->dtype == DType::F32, "attention_train_backward: ",
                 t->desc(), " for k ", k.desc());
  BRISK_ASSERT(lse.numel() == L.T * L.n_head && lse.dtype == DType::F32, "attention_train_backward: lse ", lse.desc());
  const float* qp = q.f32();
  const float* kp = k.f32();
  const float* vp = v.f32();
  const float* op = out.f32();
  const float* lp = lse.f32();
  const float* dop = dout.f32();
  const int64_t kv_stride = L.n_kv * L.hd, hd = L.hd, nh = L.n_head;
  auto qrow = [&](const float* base, int64_t t, int64_t h) { return base + (t * nh + h) * hd; };
  auto kvrow = [&](const float* base, int64_t j, int64_t kvh) { return base + j * kv_stride + kvh * hd; };

  // Pass 1, over (query row t, head h): D = dO . O, then dQ = scale * sum_j dS_j K_j.
  std::vector<float> D(static_cast<size_t>(L.T * nh));
  float* dqp = dq.f32();
  for_items_strided<double>(L.T * nh, [&](int64_t it, std::vector<double>& acc) {
    const int64_t t = it / nh, h = it % nh, kvh = h / L.group;
    const float* qv = qrow(qp, t, h);
    const float* dov = qrow(dop, t, h);
    const float Dt = cpu::dot(dov, qrow(op, t, h), hd), lse_t = lp[it];
    D[size_t(it)] = Dt;
    acc.assign(size_t(hd), 0.0);
    for (int64_t j = first_key(L, t, window); j <= t; ++j) {
      const float p = std::exp(cpu::dot(qv, kvrow(kp, j, kvh), hd) * scale - lse_t);
      const float dp = cpu::dot(dov, kvrow(vp, j, kvh), hd);
      add_scaled(double(p) * (double(dp) - double(Dt)), kvrow(kp, j, kvh), acc.data(), hd);
    }
    float* dqv = dqp + it * hd;  // row t, head h
    for (int64_t e = 0; e < hd; ++e) dqv[e] = float(acc[size_t(e)] * double(scale));
  });

  // Pass 2, over (key row j, kv head): every query head of the group, every query row that sees j.
  float* dkp = dk.f32();
  float* dvp = dv.f32();
  for_items_strided<double>(L.T * L.n_kv, [&](int64_t it, std::vector<double>& acc) {
    const int64_t j = it / L.n_kv, kvh = it % L.n_kv;
    const float* kv = kvrow(kp, j, kvh);
    const float* vv = kvrow(vp, j, kvh);
    acc.assign(size_t(2 * hd), 0.0);  // dK then dV
    const int64_t t_end = last_query_end(L, j, window);
    for (int64_t h = kvh * L.group; h < (kvh + 1) * L.group; ++h)
      for (int64_t t = j; t < t_end; ++t) {
        const float* qv = qrow(qp, t, h);
        const float* dov = qrow(dop, t, h);
        const float p = std::exp(cpu::dot(qv, kv, hd) * scale - lp[t * nh + h]);
        const float dp = cpu::dot(dov, vv, hd);
        add_scaled(double(p) * (double(dp) - double(D[size_t(t * nh + h)])), qv, acc.data(), hd);
        add_scaled(double(p), dov, acc.data() + hd, hd);
      }
    float* dkv = dkp + j * kv_stride + kvh * hd;
    float* dvv = dvp + j * kv_stride + kvh * hd;
    for (int64_t e = 0; e < hd; ++e) {
      dkv[e] = float(acc[size_t(e)] * double(scale));
      dvv[e] = float(acc[size_t(hd + e)]);
    }
  });
}

}  // namespace brisk::ops
