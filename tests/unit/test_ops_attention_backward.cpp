// Packed-sequence training attention: the forward against the inference attention() on each
// segment (bit for bit) and a double reference (out and lse); the backward against finite
// differences in double (test_ops_backward_util.h); and a whole tiny block
// (rmsnorm -> q/k/v matmuls -> rope -> attention -> output matmul) differentiated in double
// against the chain of backward ops, to show that they compose.
//
// Tolerances (max|a-b| / max|b|), about 4x the worst error seen (fp32 rounding):
//   kTolForward 8e-7 (out and lse vs double; seen 2e-7), kTolBackward 3e-6 (dq, dk, dv; seen
//   7e-7), kTolBlock 6e-6 (every gradient of the composed block; seen 1.4e-6).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "test_ops_backward_util.h"

namespace brisk {
namespace {

using namespace gradcheck;

constexpr double kTolForward = 8e-7;
constexpr double kTolBackward = 3e-6;
constexpr double kTolBlock = 6e-6;

struct AttnCase {
  std::vector<int32_t> cu;  // segment boundaries
  int64_t nh, nkv, hd;
  int window;
  std::string str() const {
    std::string segs;
    for (size_t s = 1; s < cu.size(); ++s) segs += cat(s > 1 ? "," : "", cu[s] - cu[s - 1]);
    return cat("segs=", segs, " heads=", nh, "/", nkv, " hd=", hd, " window=", window);
  }
};

std::vector<AttnCase> attention_cases() {
  std::vector<AttnCase> cases;
  for (const std::vector<int32_t>& cu : {std::vector<int32_t>{0, 1, 6, 23}, std::vector<int32_t>{0, 17, 17, 22, 23}})
    for (auto [nh, nkv] : {std::pair<int64_t, int64_t>{4, 4}, {4, 2}, {4, 1}})
      for (int window : {0, 3}) cases.push_back({cu, nh, nkv, 5, window});
  return cases;
}

TEST(OpsAttentionBackward, ForwardMatchesInferenceAttention) {
  Rng rng(2000);
  for (const AttnCase& c : attention_cases()) {
    const int64_t T = c.cu.back();
    const float scale = 1.0f / std::sqrt(float(c.hd));
    std::vector<float> q = random_floats(rng, T * c.nh * c.hd, 2.0f), k = random_floats(rng, T * c.nkv * c.hd),
                       v = random_floats(rng, T * c.nkv * c.hd);
    std::vector<float> out = poisoned(T * c.nh * c.hd), lse = poisoned(T * c.nh);
    Tensor qt = view(q, {T, c.nh, c.hd}), kt = view(k, {T, c.nkv, c.hd}), vt = view(v, {T, c.nkv, c.hd});
    ops::attention_train_forward(qt, kt, vt, c.cu.data(), int(c.cu.size()) - 1, view(out, {T, c.nh, c.hd}),
                                 view(lse, {T, c.nh}), scale, c.window);
    std::vector<double> ref_lse;
    const std::vector<double> ref =
        fwd_attention(widen(q), widen(k), widen(v), c.nh, c.nkv, c.hd, c.cu, c.window, scale, &ref_lse);
    expect_close("attention_train_forward out " + c.str(), out, ref, kTolForward);
    expect_close("attention_train_forward lse " + c.str(), lse, ref_lse, kTolForward);
    for (size_t s = 0; s + 1 < c.cu.size(); ++s) {  // each segment alone through inference attention()
      const int64_t b = c.cu[s], e = c.cu[s + 1];
      if (b == e) continue;
      std::vector<float> seg_out = poisoned((e - b) * c.nh * c.hd);
      ops::attention(qt.rows(b, e), kt.rows(b, e), vt.rows(b, e), 0, view(seg_out, {e - b, c.nh, c.hd}), scale,
                     c.window);
      const std::vector<float> train_out(out.begin() + b * c.nh * c.hd, out.begin() + e * c.nh * c.hd);
      EXPECT_EQ(train_out, seg_out) << c.str() << " segment " << s;
    }
  }
}

TEST(OpsAttentionBackward, GradientsMatchFiniteDifferences) {
  Rng rng(2100);
  for (const AttnCase& c : attention_cases()) {
    const int64_t T = c.cu.back();
    const float scale = 1.0f / std::sqrt(float(c.hd));
    std::vector<float> q = random_floats(rng, T * c.nh * c.hd, 2.0f), k = random_floats(rng, T * c.nkv * c.hd),
                       v = random_floats(rng, T * c.nkv * c.hd), dout = random_floats(rng, T * c.nh * c.hd);
    const Shape qs{T, c.nh, c.hd}, ks{T, c.nkv, c.hd};
    const int n_seg = int(c.cu.size()) - 1;
    std::vector<float> out = poisoned(T * c.nh * c.hd), lse = poisoned(T * c.nh);
    ops::attention_train_forward(view(q, qs), view(k, ks), view(v, ks), c.cu.data(), n_seg, view(out, qs),
                                 view(lse, {T, c.nh}), scale, c.window);
    std::vector<float> dq = poisoned(T * c.nh * c.hd), dk = poisoned(T * c.nkv * c.hd), dv = poisoned(T * c.nkv * c.hd);
    ops::attention_train_backward(view(q, qs), view(k, ks), view(v, ks), view(out, qs), view(lse, {T, c.nh}),
                                  view(dout, qs), c.cu.data(), n_seg, view(dq, qs), view(dk, ks), view(dv, ks), scale,
                                  c.window);
    Forward f = [&](const Inputs& in) {
      return fwd_attention(in[0], in[1], in[2], c.nh, c.nkv, c.hd, c.cu, c.window, scale);
    };
    const Inputs in = {widen(q), widen(k), widen(v)};
    expect_close("attention_train_backward dq " + c.str(), dq, numeric_grad(f, in, 0, widen(dout)), kTolBackward);
    expect_close("attention_train_backward dk " + c.str(), dk, numeric_grad(f, in, 1, widen(dout)), kTolBackward);
    expect_close("attention_train_backward dv " + c.str(), dv, numeric_grad(f, in, 2, widen(dout)), kTolBackward);
  }
}

// ---- a whole block --------------------------------------------------------------------------

// x [T, H] -> xn = rmsnorm(x, wn) -> q, k, v = xn @ {wq, wk, wv}^T -> rope(q), rope(k) at
// positions inside each segment -> a = attention(q, k, v) -> y = a @ wo^T [T, H].
struct Block {
  std::vector<int32_t> cu{0, 1, 5, 12};
  int64_t T = 12, H = 6, nh = 4, nkv = 2, hd = 4;
  int n_freq = 2, window = 0;
  float eps = 1e-5f, scale = 0.5f;
  std::vector<int32_t> pos;
  std::vector<float> inv_freq = rope_inv_freq(2);
  Block() {
    for (size_t s = 0; s + 1 < cu.size(); ++s)
      for (int32_t t = cu[s]; t < cu[s + 1]; ++t) pos.push_back(t - cu[s]);
  }
  // inputs: x, wn, wq, wk, wv, wo
  std::vector<double> forward(const Inputs& in) const {
    const std::vector<double> xn = fwd_rmsnorm(in[0], in[1], T, H, eps, 0.0);
    const std::vector<double> q = fwd_rope(fwd_matmul(xn, in[2], T, H, nh * hd), T, nh, hd, pos, inv_freq, 1.0);
    const std::vector<double> k = fwd_rope(fwd_matmul(xn, in[3], T, H, nkv * hd), T, nkv, hd, pos, inv_freq, 1.0);
    const std::vector<double> v = fwd_matmul(xn, in[4], T, H, nkv * hd);
    return fwd_matmul(fwd_attention(q, k, v, nh, nkv, hd, cu, window, scale), in[5], T, nh * hd, H);
  }
};

TEST(OpsAttentionBackward, ComposedBlockGradients) {
  Rng rng(2200);
  for (int window : {0, 3}) {
    Block B;
    B.window = window;
    const int64_t T = B.T, H = B.H, Q = B.nh * B.hd, KV = B.nkv * B.hd;
    const int n_seg = int(B.cu.size()) - 1;
    std::vector<float> x = random_floats(rng, T * H), wn = random_floats(rng, H), wq = random_floats(rng, Q * H),
                       wk = random_floats(rng, KV * H), wv = random_floats(rng, KV * H), wo = random_floats(rng, H * Q),
                       dy = random_floats(rng, T * H);
    // Forward with the float ops, keeping what backward needs.
    std::vector<float> xn(size_t(T * H)), q(size_t(T * Q)), k(size_t(T * KV)), v(size_t(T * KV)), a(size_t(T * Q)),
        lse(size_t(T * B.nh));
    const Tensor none;
    ops::rmsnorm(view(x, {T, H}), view(wn, {H}), B.eps, view(xn, {T, H}));
    ops::matmul(view(xn, {T, H}), view(wq, {Q, H}), none, view(q, {T, Q}));
    ops::matmul(view(xn, {T, H}), view(wk, {KV, H}), none, view(k, {T, KV}));
    ops::matmul(view(xn, {T, H}), view(wv, {KV, H}), none, view(v, {T, KV}));
    ops::rope(view(q, {T, B.nh, B.hd}), B.pos.data(), B.inv_freq.data(), B.n_freq);
    ops::rope(view(k, {T, B.nkv, B.hd}), B.pos.data(), B.inv_freq.data(), B.n_freq);
    const Shape qs{T, B.nh, B.hd}, ks{T, B.nkv, B.hd};
    ops::attention_train_forward(view(q, qs), view(k, ks), view(v, ks), B.cu.data(), n_seg, view(a, qs),
                                 view(lse, {T, B.nh}), B.scale, window);
    // Backward: the chain of backward ops, from dy back to x and every weight.
    std::vector<float> da = poisoned(T * Q), dq = poisoned(T * Q), dk = poisoned(T * KV), dv = poisoned(T * KV),
                       dxn = poisoned(T * H), dx = poisoned(T * H), dwn = poisoned(H), dwq = poisoned(Q * H),
                       dwk = poisoned(KV * H), dwv = poisoned(KV * H), dwo = poisoned(H * Q);
    ops::matmul_backward_x(view(dy, {T, H}), view(wo, {H, Q}), view(da, {T, Q}));
    ops::matmul_backward_w(view(dy, {T, H}), view(a, {T, Q}), view(dwo, {H, Q}));
    ops::attention_train_backward(view(q, qs), view(k, ks), view(v, ks), view(a, qs), view(lse, {T, B.nh}),
                                  view(da, qs), B.cu.data(), n_seg, view(dq, qs), view(dk, ks), view(dv, ks), B.scale,
                                  window);
    ops::rope_backward(view(dq, qs), B.pos.data(), B.inv_freq.data(), B.n_freq);
    ops::rope_backward(view(dk, ks), B.pos.data(), B.inv_freq.data(), B.n_freq);
    ops::matmul_backward_w(view(dq, {T, Q}), view(xn, {T, H}), view(dwq, {Q, H}));
    ops::matmul_backward_w(view(dk, {T, KV}), view(xn, {T, H}), view(dwk, {KV, H}));
    ops::matmul_backward_w(view(dv, {T, KV}), view(xn, {T, H}), view(dwv, {KV, H}));
    ops::matmul_backward_x(view(dq, {T, Q}), view(wq, {Q, H}), view(dxn, {T, H}));
    ops::matmul_backward_x(view(dk, {T, KV}), view(wk, {KV, H}), view(dxn, {T, H}), /*accumulate=*/true);
    ops::matmul_backward_x(view(dv, {T, KV}), view(wv, {KV, H}), view(dxn, {T, H}), /*accumulate=*/true);
    ops::rmsnorm_backward(view(x, {T, H}), view(wn, {H}), B.eps, 0.0f, view(dxn, {T, H}), view(dx, {T, H}),
                          view(dwn, {H}));

    Forward f = [&](const Inputs& in) { return B.forward(in); };
    const Inputs in = {widen(x), widen(wn), widen(wq), widen(wk), widen(wv), widen(wo)};
    const std::vector<float>* grads[] = {&dx, &dwn, &dwq, &dwk, &dwv, &dwo};
    const char* names[] = {"dx", "d rmsnorm weight", "dwq", "dwk", "dwv", "dwo"};
    for (size_t i = 0; i < in.size(); ++i)
      expect_close(cat("block ", names[i], " window=", window), *grads[i], numeric_grad(f, in, i, widen(dy)),
                   kTolBlock);
  }
}

}  // namespace
}  // namespace brisk
