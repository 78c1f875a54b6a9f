// CPU ops against plain double-precision references written out here, on fresh random inputs
// over shape sweeps with odd sizes. Outputs are poisoned with NaN first, so an element the op
// forgets to write fails the comparison. Each case prints max|a-b| / max|b|.
//
// Tolerances (relative to the largest reference magnitude), about 4x the worst error seen:
// matmul and attention 2e-6 (fp32 sums over up to 4096 terms; seen <= 5.4e-7); rmsnorm, rope,
// swiglu, softmax 5e-7 (a few fp32 roundings per element; seen <= 1.2e-7); add, embedding exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace brisk {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kTolSum = 2e-6;        // matmul, attention
constexpr double kTolPointwise = 5e-7;  // rmsnorm, rope, swiglu, softmax

HostTensor random_tensor(Rng& rng, Shape s, float scale = 1.0f) {
  HostTensor t(DType::F32, s);
  float* p = t.f32();
  for (int64_t i = 0; i < t.t.numel(); ++i) p[i] = rng.normal() * scale;
  return t;
}

HostTensor poisoned(Shape s) {
  HostTensor t(DType::F32, s);
  std::fill(t.f32(), t.f32() + t.t.numel(), kNaN);
  return t;
}

// max|a-b| / max|b|; infinite when any element of a is NaN (never written) or sizes differ.
double rel_err(const float* a, const std::vector<double>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (std::isnan(a[i])) return std::numeric_limits<double>::infinity();
    num = std::max(num, std::fabs(double(a[i]) - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return den > 0 ? num / den : num;
}

void expect_close(const std::string& what, const float* a, const std::vector<double>& b, double tol) {
  double e = rel_err(a, b);
  std::printf("  %-60s max rel err %.3g\n", what.c_str(), e);
  EXPECT_LE(e, tol) << what;
}

// ---- matmul ---------------------------------------------------------------------------

std::vector<double> ref_matmul(const float* x, const float* w, const float* bias, const float* out0, int64_t n,
                               int64_t K, int64_t N) {
  std::vector<double> r(size_t(n * N));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = out0 ? out0[i * N + j] : 0.0;
      if (bias) s += bias[j];
      for (int64_t k = 0; k < K; ++k) s += double(x[i * K + k]) * double(w[j * K + k]);
      r[size_t(i * N + j)] = s;
    }
  return r;
}

using MatmulFn = void (*)(const Tensor&, const Tensor&, const Tensor&, Tensor, bool);

void check_matmul_path(const char* name, MatmulFn fn, int64_t n, int64_t K, int64_t N, uint64_t seed) {
  Rng rng(seed);
  HostTensor x = random_tensor(rng, {n, K}), w = random_tensor(rng, {N, K}), b = random_tensor(rng, {N});
  for (bool use_bias : {false, true})
    for (bool acc : {false, true}) {
      HostTensor out = acc ? random_tensor(rng, {n, N}) : poisoned({n, N});
      std::vector<float> out0(out.f32(), out.f32() + n * N);
      auto ref = ref_matmul(x.f32(), w.f32(), use_bias ? b.f32() : nullptr, acc ? out0.data() : nullptr, n, K, N);
      fn(x.t, w.t, use_bias ? b.t : Tensor(), out.t, acc);
      expect_close(cat(name, " n=", n, " K=", K, " N=", N, use_bias ? " +bias" : "", acc ? " +=" : ""),
                   out.f32(), ref, kTolSum);
    }
}

struct MatmulShape {
  int64_t n, K, N;
};
const MatmulShape kMatmulShapes[] = {{1, 1, 1},    {1, 3, 17},   {1, 127, 130}, {1, 4096, 67}, {2, 17, 3},
                                     {3, 8, 4},    {5, 130, 127}, {17, 127, 130}, {48, 512, 64}, {49, 513, 65},
                                     {130, 64, 3}, {7, 1030, 33}};

TEST(OpsCpu, MatmulPublic) {
  for (auto s : kMatmulShapes) check_matmul_path("matmul", ops::matmul, s.n, s.K, s.N, 1000 + s.n * 7 + s.K);
}

TEST(OpsCpu, MatmulFallback) {
  std::printf("  (BLAS %s in this build)\n", ops::cpu::have_blas() ? "present" : "absent");
  for (auto s : kMatmulShapes)
    check_matmul_path("matmul_fallback", ops::cpu::matmul_fallback, s.n, s.K, s.N, 2000 + s.n * 7 + s.K);
}

TEST(OpsCpu, Gemv) {
  for (int64_t K : {1, 5, 8, 31, 32, 33, 4096})
    for (int64_t N : {1, 3, 130, 1000}) check_matmul_path("gemv", ops::cpu::gemv, 1, K, N, 3000 + K + N);
}

// x with more than two dimensions is a batch of rows.
TEST(OpsCpu, MatmulFlattensLeadingDims) {
  Rng rng(7);
  HostTensor x = random_tensor(rng, {2, 3, 19}), w = random_tensor(rng, {11, 19});
  HostTensor out = poisoned({2, 3, 11});
  ops::matmul(x.t, w.t, Tensor(), out.t);
  expect_close("matmul [2,3,19] x [11,19]^T", out.f32(), ref_matmul(x.f32(), w.f32(), nullptr, nullptr, 6, 19, 11),
               kTolSum);
}

// ---- rmsnorm --------------------------------------------------------------------------

TEST(OpsCpu, Rmsnorm) {
  Rng rng(11);
  for (int64_t H : {1, 3, 17, 127, 130, 4096})
    for (int64_t n : {1, 3, 7})
      for (float offset : {0.0f, 1.0f})
        for (bool in_place : {false, true}) {
          const float eps = 1e-6f;
          HostTensor x = random_tensor(rng, {n, H}, 3.0f), w = random_tensor(rng, {H});
          std::vector<double> ref(size_t(n * H));
          for (int64_t i = 0; i < n; ++i) {
            double ss = 0;
            for (int64_t k = 0; k < H; ++k) ss += double(x.f32()[i * H + k]) * x.f32()[i * H + k];
            double inv = 1.0 / std::sqrt(ss / double(H) + double(eps));
            for (int64_t k = 0; k < H; ++k)
              ref[size_t(i * H + k)] = double(x.f32()[i * H + k]) * inv * (double(w.f32()[k]) + offset);
          }
          HostTensor out = poisoned({n, H});
          Tensor dst = in_place ? x.t : out.t;
          ops::rmsnorm(x.t, w.t, eps, dst, offset);
          expect_close(cat("rmsnorm n=", n, " H=", H, " offset=", offset, in_place ? " in place" : ""), dst.f32(),
                       ref, kTolPointwise);
        }
}

// ---- rope -----------------------------------------------------------------------------

TEST(OpsCpu, Rope) {
  Rng rng(13);
  struct Case {
    int64_t n, heads, hd;
    int n_freq;
    float mscale;
  };
  for (Case c : {Case{1, 1, 2, 1, 1.0f}, Case{3, 2, 8, 4, 1.0f}, Case{17, 3, 64, 32, 1.0f},
                 Case{5, 4, 128, 64, 1.2079f}, Case{4, 2, 130, 65, 1.0f}, Case{6, 2, 64, 16, 1.0f}}) {
    HostTensor x = random_tensor(rng, {c.n, c.heads, c.hd});
    std::vector<float> x0(x.f32(), x.f32() + x.t.numel());
    std::vector<float> inv_freq(size_t(c.n_freq));
    for (int i = 0; i < c.n_freq; ++i) inv_freq[size_t(i)] = float(std::pow(10000.0, -2.0 * i / (2 * c.n_freq)));
    std::vector<int32_t> pos(size_t(c.n));
    for (int64_t t = 0; t < c.n; ++t) pos[size_t(t)] = t == 0 ? 0 : int32_t(rng.below(200000));
    std::vector<double> ref(x0.begin(), x0.end());
    const int64_t half = c.n_freq;
    for (int64_t t = 0; t < c.n; ++t)
      for (int64_t h = 0; h < c.heads; ++h)
        for (int64_t i = 0; i < half; ++i) {
          float angle = float(pos[size_t(t)]) * inv_freq[size_t(i)];  // fp32, as transformers computes it
          double cs = std::cos(double(angle)) * c.mscale, sn = std::sin(double(angle)) * c.mscale;
          size_t a = size_t((t * c.heads + h) * c.hd + i), b = a + size_t(half);
          ref[a] = x0[a] * cs - x0[b] * sn;
          ref[b] = x0[b] * cs + x0[a] * sn;
        }
    ops::rope(x.t, pos.data(), inv_freq.data(), c.n_freq, c.mscale);
    expect_close(cat("rope n=", c.n, " heads=", c.heads, " hd=", c.hd, " n_freq=", c.n_freq, " mscale=", c.mscale),
                 x.f32(), ref, kTolPointwise);
    for (int64_t t = 0; t < c.n; ++t)  // dims past 2 * n_freq are untouched, bit for bit
      for (int64_t h = 0; h < c.heads; ++h)
        for (int64_t i = 2 * half; i < c.hd; ++i) {
          size_t a = size_t((t * c.heads + h) * c.hd + i);
          ASSERT_EQ(x.f32()[a], x0[a]);
        }
  }
}

// ---- attention ------------------------------------------------------------------------

std::vector<double> ref_attention(const float* q, const float* k, const float* v, int64_t n, int64_t n_head,
                                  int64_t n_kv, int64_t hd, int64_t pos0, double scale, int window,
                                  double softcap) {
  std::vector<double> out(size_t(n * n_head * hd), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < n_head; ++h) {
      int64_t p = pos0 + i, kvh = h / (n_head / n_kv);
      int64_t lo = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;
      std::vector<double> s;
      for (int64_t j = lo; j <= p; ++j) {
        double d = 0;
        for (int64_t e = 0; e < hd; ++e) d += double(q[(i * n_head + h) * hd + e]) * k[(j * n_kv + kvh) * hd + e];
        d *= scale;
        if (softcap > 0) d = softcap * std::tanh(d / softcap);
        s.push_back(d);
      }
      double mx = *std::max_element(s.begin(), s.end()), sum = 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int64_t j = lo; j <= p; ++j)
        for (int64_t e = 0; e < hd; ++e)
          out[size_t((i * n_head + h) * hd + e)] += s[size_t(j - lo)] / sum * v[(j * n_kv + kvh) * hd + e];
    }
  return out;
}

TEST(OpsCpu, Attention) {
  Rng rng(17);
  struct Case {
    int64_t n, n_head, n_kv, hd, pos0;
    int window;
    float softcap;
  };
  std::vector<Case> cases;
  for (auto [nh, nkv] : {std::pair{4, 4}, std::pair{4, 2}, std::pair{8, 2}})
    for (int64_t hd : {3, 17, 64})
      for (auto [n, pos0] : {std::pair{1, 0}, std::pair{1, 37}, std::pair{7, 0}, std::pair{5, 12}, std::pair{17, 3}})
        for (int window : {0, 1, 4, 9})
          for (float softcap : {0.0f, 5.0f}) cases.push_back({n, nh, nkv, hd, pos0, window, softcap});
  for (const Case& c : cases) {
    const int64_t cap = c.pos0 + c.n + 3;
    // Large q so that the scores are well spread (and the softcap actually bends them).
    HostTensor q = random_tensor(rng, {c.n, c.n_head, c.hd}, 2.0f);
    HostTensor k = random_tensor(rng, {cap, c.n_kv, c.hd}), v = random_tensor(rng, {cap, c.n_kv, c.hd});
    // Cache rows no query may see are NaN: past the new tokens, and before the first window.
    int64_t first_visible = c.window > 0 ? std::max<int64_t>(0, c.pos0 - c.window + 1) : 0;
    for (int64_t r = 0; r < cap; ++r)
      if (r < first_visible || r >= c.pos0 + c.n)
        for (int64_t e = 0; e < c.n_kv * c.hd; ++e) k.f32()[r * c.n_kv * c.hd + e] = v.f32()[r * c.n_kv * c.hd + e] = kNaN;
    float scale = 1.0f / std::sqrt(float(c.hd));
    auto ref = ref_attention(q.f32(), k.f32(), v.f32(), c.n, c.n_head, c.n_kv, c.hd, c.pos0, scale, c.window,
                             c.softcap);
    HostTensor out = poisoned({c.n, c.n_head, c.hd});
    ops::attention(q.t, k.t, v.t, c.pos0, out.t, scale, c.window, c.softcap);
    expect_close(cat("attention n=", c.n, " heads=", c.n_head, "/", c.n_kv, " hd=", c.hd, " pos0=", c.pos0,
                     " window=", c.window, " softcap=", c.softcap),
                 out.f32(), ref, kTolSum);
  }
}

// ---- elementwise, softmax, embedding --------------------------------------------------

const int64_t kSizes[] = {1, 3, 17, 127, 130, 70001};

TEST(OpsCpu, Swiglu) {
  Rng rng(19);
  for (int64_t m : kSizes)
    for (bool in_place : {false, true}) {
      HostTensor g = random_tensor(rng, {m}, 4.0f), u = random_tensor(rng, {m}), out = poisoned({m});
      std::vector<double> ref(static_cast<size_t>(m));
      for (int64_t i = 0; i < m; ++i) {
        double gi = g.f32()[i];
        ref[size_t(i)] = gi / (1.0 + std::exp(-gi)) * u.f32()[i];
      }
      Tensor dst = in_place ? g.t : out.t;
      ops::swiglu(g.t, u.t, dst);
      expect_close(cat("swiglu m=", m, in_place ? " in place" : ""), dst.f32(), ref, kTolPointwise);
    }
}

TEST(OpsCpu, SwigluExtremeGates) {
  // exp(-g) overflows for very negative g: silu must go to -0, not NaN.
  float gv[] = {-1000.0f, -90.0f, 0.0f, 90.0f, 1000.0f}, uv[] = {1, 2, 3, 4, 5}, ov[5];
  ops::swiglu(Tensor(gv, DType::F32, {5}), Tensor(uv, DType::F32, {5}), Tensor(ov, DType::F32, {5}));
  for (int i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(ov[i], gv[i] > 0 ? gv[i] * uv[i] : 0.0f) << gv[i];
}

TEST(OpsCpu, Add) {
  Rng rng(23);
  for (int64_t m : kSizes) {
    HostTensor a = random_tensor(rng, {m}), b = random_tensor(rng, {m}), out = poisoned({m});
    std::vector<float> expect(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) expect[size_t(i)] = a.f32()[i] + b.f32()[i];  // one fp32 rounding
    ops::add(a.t, b.t, out.t);
    for (int64_t i = 0; i < m; ++i) ASSERT_EQ(out.f32()[i], expect[size_t(i)]) << i;
    ops::add(a.t, b.t, b.t);  // aliasing the output with an input
    for (int64_t i = 0; i < m; ++i) ASSERT_EQ(b.f32()[i], expect[size_t(i)]) << i;
  }
}

TEST(OpsCpu, SoftmaxRows) {
  Rng rng(29);
  for (int64_t m : {1, 3, 17, 127, 130, 4099})
    for (int64_t n : {1, 5}) {
      HostTensor x = random_tensor(rng, {n, m}, 15.0f);  // logits spanning about +-90
      std::vector<double> ref(size_t(n * m));
      for (int64_t i = 0; i < n; ++i) {
        const float* r = x.f32() + i * m;
        double mx = *std::max_element(r, r + m), sum = 0;
        for (int64_t j = 0; j < m; ++j) sum += std::exp(double(r[j]) - mx);
        for (int64_t j = 0; j < m; ++j) ref[size_t(i * m + j)] = std::exp(double(r[j]) - mx) / sum;
      }
      ops::softmax_rows(x.t);
      expect_close(cat("softmax_rows n=", n, " m=", m), x.f32(), ref, kTolPointwise);
    }
}

TEST(OpsCpu, Embedding) {
  Rng rng(31);
  const int64_t V = 37;
  for (DType dt : {DType::F32, DType::BF16, DType::F16})
    for (int64_t H : {1, 3, 130}) {
      HostTensor src = random_tensor(rng, {V, H});
      HostTensor table(dt, {V, H});
      convert_floats(src.f32(), DType::F32, table.t.data, dt, size_t(V * H));
      std::vector<float> exact(size_t(V * H));  // the table's values, widened (exact)
      convert_floats(table.t.data, dt, exact.data(), DType::F32, exact.size());
      std::vector<int32_t> ids = {0, 36, 5, 5, 17, 1};
      HostTensor out = poisoned({int64_t(ids.size()), H});
      ops::embedding(table.t, ids.data(), int64_t(ids.size()), out.t);
      for (size_t i = 0; i < ids.size(); ++i)
        for (int64_t j = 0; j < H; ++j)
          ASSERT_EQ(out.f32()[int64_t(i) * H + j], exact[size_t(ids[i] * H + j)]) << dtype_name(dt) << " " << i;
    }
}

TEST(OpsCpu, EmbeddingRejectsBadIds) {
  std::vector<float> table(10 * 4, 1.0f);
  Tensor t(table.data(), DType::F32, {10, 4});
  for (int32_t bad : {10, 12345, -1}) {
    std::vector<int32_t> ids = {1, 2, bad};
    HostTensor out = poisoned({3, 4});
    try {
      ops::embedding(t, ids.data(), 3, out.t);
      FAIL() << "no error for id " << bad;
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
      EXPECT_NE(msg.find("10"), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    EXPECT_TRUE(std::isnan(out.f32()[0])) << "nothing is written when an id is bad";
  }
}

}  // namespace
}  // namespace brisk
