// Backward CPU ops (matmul, bias, rmsnorm, rope, swiglu, embedding, scale, cross-entropy)
// checked against finite differences in double precision (test_ops_backward_util.h says how).
// Fresh random inputs, odd shapes; overwritten gradients are poisoned with NaN first (an
// unwritten element fails), accumulated ones are pre-filled with random values (checks +=).
//
// Tolerances (max|a-b| / max|b|), about 4x the worst error seen, i.e. fp32 rounding:
//   kTolSum 2e-6: matmul, bias, rmsnorm's dw (fp32 or double sums of up to 130 terms; seen 4.2e-7)
//   kTolPointwise 8e-7: rmsnorm dx, rope, swiglu, scale, embedding, cross-entropy (seen 1.8e-7)
//   cross-entropy loss (a double sum of fp32 exps): 1e-8 relative (seen 2e-9).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backward.h"
#include "backend/ops.h"
#include "test_ops_backward_util.h"

namespace brisk {
namespace {

using namespace gradcheck;

constexpr double kTolSum = 2e-6;
constexpr double kTolPointwise = 8e-7;
constexpr double kTolLoss = 1e-8;

// ---- matmul, bias ---------------------------------------------------------------------------

using MatmulBwd = void (*)(const Tensor&, const Tensor&, Tensor, bool);

void check_matmul_backward(const char* path, MatmulBwd bwd_x, MatmulBwd bwd_w, int64_t n, int64_t K, int64_t N,
                           uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x = random_floats(rng, n * K), w = random_floats(rng, N * K), dy = random_floats(rng, n * N);
  Forward f = [&](const Inputs& in) { return fwd_matmul(in[0], in[1], n, K, N); };
  const Inputs in = {widen(x), widen(w)};
  const std::vector<double> gx = numeric_grad(f, in, 0, widen(dy)), gw = numeric_grad(f, in, 1, widen(dy));
  for (bool acc : {false, true}) {
    std::vector<float> dx = acc ? random_floats(rng, n * K) : poisoned(n * K);
    std::vector<float> dw = acc ? random_floats(rng, N * K) : poisoned(N * K);
    const std::vector<float> dx0 = dx, dw0 = dw;
    bwd_x(view(dy, {n, N}), view(w, {N, K}), view(dx, {n, K}), acc);
    bwd_w(view(dy, {n, N}), view(x, {n, K}), view(dw, {N, K}), acc);
    const std::string tag = cat(path, " n=", n, " K=", K, " N=", N, acc ? " accumulate" : "");
    expect_close("matmul_backward_x " + tag, dx, acc ? plus(dx0, gx) : gx, kTolSum);
    expect_close("matmul_backward_w " + tag, dw, acc ? plus(dw0, gw) : gw, kTolSum);
  }
}

struct MatmulShape {
  int64_t n, K, N;
};
const MatmulShape kMatmulShapes[] = {{1, 1, 1}, {1, 7, 3}, {3, 5, 7}, {17, 9, 4}, {5, 130, 3}, {67, 3, 11}};

TEST(OpsBackward, Matmul) {
  uint64_t seed = 100;
  for (MatmulShape s : kMatmulShapes)
    check_matmul_backward("public", ops::matmul_backward_x, ops::matmul_backward_w, s.n, s.K, s.N, ++seed);
}

TEST(OpsBackward, MatmulFallback) {
  uint64_t seed = 200;
  for (MatmulShape s : kMatmulShapes)
    check_matmul_backward("fallback", ops::cpu::matmul_backward_x_fallback, ops::cpu::matmul_backward_w_fallback,
                          s.n, s.K, s.N, ++seed);
}

TEST(OpsBackward, MatmulBackwardFlattensLeadingDims) {  // dy [2, 3, N] as the matmul forward allows
  Rng rng(300);
  const int64_t K = 5, N = 4;
  std::vector<float> x = random_floats(rng, 6 * K), w = random_floats(rng, N * K), dy = random_floats(rng, 6 * N);
  std::vector<float> dx = poisoned(6 * K), dw = poisoned(N * K);
  ops::matmul_backward_x(view(dy, {2, 3, N}), view(w, {N, K}), view(dx, {2, 3, K}));
  ops::matmul_backward_w(view(dy, {2, 3, N}), view(x, {2, 3, K}), view(dw, {N, K}));
  Forward f = [&](const Inputs& in) { return fwd_matmul(in[0], in[1], 6, K, N); };
  expect_close("matmul_backward_x [2, 3, K]", dx, numeric_grad(f, {widen(x), widen(w)}, 0, widen(dy)), kTolSum);
  expect_close("matmul_backward_w [2, 3, K]", dw, numeric_grad(f, {widen(x), widen(w)}, 1, widen(dy)), kTolSum);
}

TEST(OpsBackward, Bias) {
  Rng rng(400);
  for (auto [n, N] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {67, 5}, {5, 300}})
    for (bool acc : {false, true}) {
      std::vector<float> b = random_floats(rng, N), dy = random_floats(rng, n * N);
      Forward f = [&](const Inputs& in) {  // y[i, j] = b[j] (the bias part of x @ w^T + b)
        std::vector<double> y(static_cast<size_t>(n * N));
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < N; ++j) y[size_t(i * N + j)] = in[0][size_t(j)];
        return y;
      };
      const std::vector<double> g = numeric_grad(f, {widen(b)}, 0, widen(dy));
      std::vector<float> db = acc ? random_floats(rng, N) : poisoned(N);
      const std::vector<float> db0 = db;
      ops::bias_backward(view(dy, {n, N}), view(db, {N}), acc);
      expect_close(cat("bias_backward n=", n, " N=", N, acc ? " accumulate" : ""), db, acc ? plus(db0, g) : g,
                   kTolSum);
    }
}

// ---- rmsnorm --------------------------------------------------------------------------------

TEST(OpsBackward, Rmsnorm) {
  Rng rng(500);
  // With H = 1 the output is ~sign(x) * w and d/dx ~ eps / x^2 nearly cancels; a small eps would
  // leave that gradient below what the differences resolve, so that case takes a large eps.
  struct Case {
    int64_t n, H;
    float eps;
  };
  for (Case c : {Case{1, 1, 0.5f}, Case{3, 2, 1e-5f}, Case{5, 17, 1e-6f}, Case{7, 130, 1e-5f}})
    for (float offset : {0.0f, 1.0f})
      for (bool acc : {false, true})
        for (bool with_dw : {true, false}) {
          const int64_t n = c.n, H = c.H;
          const float eps = c.eps;
          std::vector<float> x = random_floats(rng, n * H, 2.0f), w = random_floats(rng, H),
                             dy = random_floats(rng, n * H);
          Forward f = [&](const Inputs& in) { return fwd_rmsnorm(in[0], in[1], n, H, eps, offset); };
          const Inputs in = {widen(x), widen(w)};
          const std::vector<double> gx = numeric_grad(f, in, 0, widen(dy)), gw = numeric_grad(f, in, 1, widen(dy));
          std::vector<float> dx = acc ? random_floats(rng, n * H) : poisoned(n * H);
          std::vector<float> dw = acc ? random_floats(rng, H) : poisoned(H);
          const std::vector<float> dx0 = dx, dw0 = dw;
          ops::rmsnorm_backward(view(x, {n, H}), view(w, {H}), eps, offset, view(dy, {n, H}), view(dx, {n, H}),
                                with_dw ? view(dw, {H}) : Tensor(), acc);
          const std::string tag = cat(" n=", n, " H=", H, " offset=", offset, acc ? " accumulate" : "");
          expect_close("rmsnorm_backward dx" + tag, dx, acc ? plus(dx0, gx) : gx, kTolPointwise);
          if (with_dw)
            expect_close("rmsnorm_backward dw" + tag, dw, acc ? plus(dw0, gw) : gw, kTolSum);
          else
            EXPECT_EQ(std::memcmp(dw.data(), dw0.data(), dw.size() * sizeof(float)), 0) << "dw untouched" << tag;
        }
}

TEST(OpsBackward, RmsnormDxMayAliasDy) {
  Rng rng(510);
  const int64_t n = 4, H = 33;
  std::vector<float> x = random_floats(rng, n * H), w = random_floats(rng, H), dy = random_floats(rng, n * H);
  std::vector<float> dx = poisoned(n * H), dw = poisoned(H), dw2 = poisoned(H);
  ops::rmsnorm_backward(view(x, {n, H}), view(w, {H}), 1e-6f, 0.0f, view(dy, {n, H}), view(dx, {n, H}), view(dw, {H}));
  ops::rmsnorm_backward(view(x, {n, H}), view(w, {H}), 1e-6f, 0.0f, view(dy, {n, H}), view(dy, {n, H}),
                        view(dw2, {H}));
  EXPECT_EQ(dx, dy);
  EXPECT_EQ(dw, dw2);
}

// ---- rope -----------------------------------------------------------------------------------

TEST(OpsBackward, Rope) {
  Rng rng(600);
  struct Case {
    int64_t n, heads, hd;
    int n_freq;
    float mscale;
  };
  for (Case c : {Case{1, 1, 2, 1, 1.0f}, Case{3, 2, 8, 4, 1.0f}, Case{7, 3, 10, 5, 1.2079f}, Case{5, 2, 9, 2, 1.0f}}) {
    std::vector<float> dx = random_floats(rng, c.n * c.heads * c.hd);
    const std::vector<float> inv_freq = rope_inv_freq(c.n_freq);
    std::vector<int32_t> pos(static_cast<size_t>(c.n));
    for (int64_t t = 0; t < c.n; ++t) pos[size_t(t)] = t == 0 ? 0 : int32_t(rng.below(100000));
    Forward f = [&](const Inputs& in) { return fwd_rope(in[0], c.n, c.heads, c.hd, pos, inv_freq, c.mscale); };
    const std::vector<double> x0 = widen(random_floats(rng, c.n * c.heads * c.hd));
    const std::vector<double> g = numeric_grad(f, {x0}, 0, widen(dx));
    ops::rope_backward(view(dx, {c.n, c.heads, c.hd}), pos.data(), inv_freq.data(), c.n_freq, c.mscale);
    expect_close(cat("rope_backward n=", c.n, " heads=", c.heads, " hd=", c.hd, " n_freq=", c.n_freq, " mscale=",
                     c.mscale),
                 dx, g, kTolPointwise);
  }
}

// ---- swiglu, scale --------------------------------------------------------------------------

TEST(OpsBackward, Swiglu) {
  Rng rng(700);
  for (int64_t m : {1, 3, 17, 130})
    for (bool in_place : {false, true}) {
      std::vector<float> g = random_floats(rng, m, 4.0f), u = random_floats(rng, m), dout = random_floats(rng, m);
      if (m > 3) {  // saturated gates; exp(90) overflows fp32 to inf
        g[0] = 30.0f;
        g[1] = -30.0f;
        g[2] = -90.0f;
      }
      Forward f = [&](const Inputs& in) {
        std::vector<double> y(static_cast<size_t>(m));
        for (size_t i = 0; i < y.size(); ++i) y[i] = in[0][i] / (1.0 + std::exp(-in[0][i])) * in[1][i];
        return y;
      };
      const Inputs in = {widen(g), widen(u)};
      const std::vector<double> gg = numeric_grad(f, in, 0, widen(dout)), gu = numeric_grad(f, in, 1, widen(dout));
      std::vector<float> dg = poisoned(m), du = poisoned(m);
      Tensor dgt = in_place ? view(g, {m}) : view(dg, {m}), dut = in_place ? view(u, {m}) : view(du, {m});
      ops::swiglu_backward(view(g, {m}), view(u, {m}), view(dout, {m}), dgt, dut);
      const std::string tag = cat(" m=", m, in_place ? " in place" : "");
      expect_close("swiglu_backward dgate" + tag, in_place ? g : dg, gg, kTolPointwise);
      expect_close("swiglu_backward dup" + tag, in_place ? u : du, gu, kTolPointwise);
    }
}

TEST(OpsBackward, Scale) {
  Rng rng(800);
  const float s = -0.37f;
  for (int64_t m : {1, 5, 333})
    for (bool in_place : {false, true}) {
      std::vector<float> a = random_floats(rng, m), out = poisoned(m), dy = random_floats(rng, m);
      Forward f = [&](const Inputs& in) {
        std::vector<double> y = in[0];
        for (double& v : y) v *= double(s);
        return y;
      };
      // scale is its own backward: out = s * dy is dL/d(a).
      const std::vector<double> g = numeric_grad(f, {widen(a)}, 0, widen(dy));
      ops::scale(view(dy, {m}), s, in_place ? view(dy, {m}) : view(out, {m}));
      expect_close(cat("scale m=", m, in_place ? " in place" : ""), in_place ? dy : out, g, kTolPointwise);
    }
  // Large enough to be split over threads: each element is the one fp32 product.
  const int64_t m = 70001;
  std::vector<float> a = random_floats(rng, m), out = poisoned(m);
  ops::scale(view(a, {m}), s, view(out, {m}));
  for (int64_t i = 0; i < m; ++i) ASSERT_EQ(out[size_t(i)], a[size_t(i)] * s) << i;
}

// ---- embedding ------------------------------------------------------------------------------

TEST(OpsBackward, Embedding) {
  Rng rng(900);
  const int64_t V = 11;
  for (int64_t H : {1, 3, 130}) {
    const std::vector<int32_t> ids = {0, 10, 5, 5, 7, 1, 5};  // repeats must add up
    const int64_t n = int64_t(ids.size());
    std::vector<float> table = random_floats(rng, V * H), dout = random_floats(rng, n * H);
    Forward f = [&](const Inputs& in) {
      std::vector<double> y(static_cast<size_t>(n * H));
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < H; ++j) y[size_t(i * H + j)] = in[0][size_t(ids[size_t(i)] * H + j)];
      return y;
    };
    const std::vector<double> g = numeric_grad(f, {widen(table)}, 0, widen(dout));
    std::vector<float> dtable = random_floats(rng, V * H);  // always accumulates
    const std::vector<float> dtable0 = dtable;
    ops::embedding_backward(ids.data(), n, view(dout, {n, H}), view(dtable, {V, H}));
    expect_close(cat("embedding_backward V=", V, " H=", H, " n=", n), dtable, plus(dtable0, g), kTolPointwise);
  }
}

TEST(OpsBackward, EmbeddingRejectsBadIds) {
  std::vector<float> dtable(10 * 4, 0.0f), dout(3 * 4, 1.0f);
  for (int32_t bad : {10, -1}) {
    const std::vector<int32_t> ids = {1, 2, bad};
    try {
      ops::embedding_backward(ids.data(), 3, view(dout, {3, 4}), view(dtable, {10, 4}));
      FAIL() << "no error for id " << bad;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
      EXPECT_NE(msg.find("position 2"), std::string::npos) << msg;
    }
    EXPECT_EQ(dtable, std::vector<float>(10 * 4, 0.0f)) << "nothing is written when an id is bad";
  }
}

// ---- cross-entropy --------------------------------------------------------------------------

// Sum over non-ignored rows of -log softmax(logits)[label], in double.
double ref_cross_entropy(const std::vector<double>& l, const std::vector<int32_t>& labels, int64_t V) {
  double total = 0.0;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == -100) continue;
    const double* r = l.data() + i * size_t(V);
    const double mx = *std::max_element(r, r + V);
    double sum = 0.0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(r[j] - mx);
    total += std::log(sum) + mx - r[labels[i]];
  }
  return total;
}

TEST(OpsBackward, CrossEntropy) {
  Rng rng(1000);
  for (int64_t V : {1, 2, 7, 301})
    for (bool in_place : {false, true}) {
      const int64_t n = 6;
      std::vector<float> logits = random_floats(rng, n * V, 3.0f);
      std::vector<int32_t> labels(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) labels[size_t(i)] = int32_t(rng.below(uint64_t(V)));
      labels[1] = labels[4] = -100;
      if (V > 2) logits[size_t(2 * V + labels[2])] = 40.0f;  // a confident row: p ~ 1, dlogit ~ 0
      const float grad_scale = 0.3125f;  // e.g. 1 / (tokens in the batch)
      Forward f = [&](const Inputs& in) { return std::vector<double>{ref_cross_entropy(in[0], labels, V)}; };
      const std::vector<double> g = numeric_grad(f, {widen(logits)}, 0, {double(grad_scale)});
      const double want = ref_cross_entropy(widen(logits), labels, V);
      std::vector<float> dl = poisoned(n * V);
      const double loss = ops::cross_entropy(view(logits, {n, V}), labels.data(),
                                             in_place ? view(logits, {n, V}) : view(dl, {n, V}), grad_scale);
      const std::string tag = cat(" n=", n, " V=", V, in_place ? " in place" : "");
      std::printf("  %-72s loss %.17g vs %.17g\n", ("cross_entropy loss" + tag).c_str(), loss, want);
      EXPECT_LE(std::fabs(loss - want), kTolLoss * std::max(1.0, std::fabs(want))) << tag;
      const std::vector<float>& got = in_place ? logits : dl;
      expect_close("cross_entropy dlogits" + tag, got, g, kTolPointwise);
      for (int64_t j = 0; j < V; ++j) {  // ignored rows: exactly zero
        EXPECT_EQ(got[size_t(1 * V + j)], 0.0f) << tag;
        EXPECT_EQ(got[size_t(4 * V + j)], 0.0f) << tag;
      }
    }
}

TEST(OpsBackward, CrossEntropyAllIgnored) {
  std::vector<float> logits = {1.0f, 2.0f, 3.0f, 4.0f}, dl = poisoned(4);
  const std::vector<int32_t> labels = {-100, -100};
  EXPECT_EQ(ops::cross_entropy(view(logits, {2, 2}), labels.data(), view(dl, {2, 2}), 1.0f), 0.0);
  EXPECT_EQ(dl, std::vector<float>(4, 0.0f));
}

TEST(OpsBackward, CrossEntropyRejectsBadLabels) {
  for (int32_t bad : {5, 12345, -1, -101}) {
    std::vector<float> logits(3 * 5, 0.5f);
    const std::vector<int32_t> labels = {0, -100, bad};
    try {
      ops::cross_entropy(view(logits, {3, 5}), labels.data(), view(logits, {3, 5}), 1.0f);
      FAIL() << "no error for label " << bad;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("label " + std::to_string(bad)), std::string::npos) << msg;
      EXPECT_NE(msg.find("row 2"), std::string::npos) << msg;
      EXPECT_NE(msg.find("5"), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    EXPECT_EQ(logits, std::vector<float>(3 * 5, 0.5f)) << "in-place logits untouched when a label is bad";
  }
}

}  // namespace
}  // namespace brisk
