// Gradient checking for the CPU training ops: a double-precision forward written in the test,
// a scalar objective L = sum(R * forward(inputs)) with a fixed random R, numeric gradients by
// central differences in double, compared with the op's analytic gradient. The op runs on float
// inputs and the double forward on exactly those values (floats widened), so the only
// difference left is the op's fp32 rounding (the differences' own error is ~1e-9 relative).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace brisk::gradcheck {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Random floats, approximately normal times `scale` (never all zero).
inline std::vector<float> random_floats(Rng& rng, int64_t n, float scale = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.normal() * scale;
  return v;
}

inline std::vector<float> poisoned(int64_t n) { return std::vector<float>(size_t(n), kNaN); }

inline std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

inline Tensor view(std::vector<float>& v, Shape s) {
  EXPECT_EQ(s.numel(), int64_t(v.size())) << s.str();
  return Tensor(v.data(), DType::F32, s);
}

using Inputs = std::vector<std::vector<double>>;
using Forward = std::function<std::vector<double>(const Inputs&)>;

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// dL/d(inputs[which]) for L = sum(R * f(inputs)), central differences with step 1e-6 relative.
inline std::vector<double> numeric_grad(const Forward& f, Inputs in, size_t which, const std::vector<double>& R) {
  std::vector<double>& x = in[which];
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i], h = 1e-6 * std::max(1.0, std::fabs(x0));
    const double xp = x0 + h, xm = x0 - h;
    x[i] = xp;
    const double lp = dot(R, f(in));
    x[i] = xm;
    const double lm = dot(R, f(in));
    x[i] = x0;
    g[i] = (lp - lm) / (xp - xm);
  }
  return g;
}

// b + c elementwise (expected value of an accumulating gradient: prior contents + gradient).
inline std::vector<double> plus(const std::vector<float>& prior, const std::vector<double>& g) {
  std::vector<double> r(g.size());
  for (size_t i = 0; i < g.size(); ++i) r[i] = double(prior[i]) + g[i];
  return r;
}

// max|a-b| / max|b|; infinite when an element of a is NaN (never written) or sizes differ.
inline double rel_err(const float* a, size_t na, const std::vector<double>& b) {
  if (na != b.size()) return std::numeric_limits<double>::infinity();
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
    num = std::max(num, std::fabs(double(a[i]) - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return den > 0 ? num / den : num;
}

inline void expect_close(const std::string& what, const std::vector<float>& a, const std::vector<double>& b,
                         double tol) {
  const double e = rel_err(a.data(), a.size(), b);
  std::printf("  %-72s max rel err %.3g\n", what.c_str(), e);
  EXPECT_LE(e, tol) << what;
}

// ---- double-precision reference forwards ---------------------------------------------------

// y [n, N] = x [n, K] @ w [N, K]^T
inline std::vector<double> fwd_matmul(const std::vector<double>& x, const std::vector<double>& w, int64_t n, int64_t K,
                               int64_t N) {
  std::vector<double> y(size_t(n * N), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) y[size_t(i * N + j)] += x[size_t(i * K + k)] * w[size_t(j * K + k)];
  return y;
}

inline std::vector<double> fwd_rmsnorm(const std::vector<double>& x, const std::vector<double>& w, int64_t n, int64_t H,
                                double eps, double offset) {
  std::vector<double> y(x.size());
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0.0;
    for (int64_t k = 0; k < H; ++k) ss += x[size_t(i * H + k)] * x[size_t(i * H + k)];
    const double r = 1.0 / std::sqrt(ss / double(H) + eps);
    for (int64_t k = 0; k < H; ++k) y[size_t(i * H + k)] = x[size_t(i * H + k)] * r * (w[size_t(k)] + offset);
  }
  return y;
}

inline std::vector<double> fwd_rope(const std::vector<double>& x, int64_t n, int64_t heads, int64_t hd,
                             const std::vector<int32_t>& pos, const std::vector<float>& inv_freq, double mscale) {
  std::vector<double> y = x;
  const int64_t half = int64_t(inv_freq.size());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const float angle = float(pos[size_t(t)]) * inv_freq[size_t(i)];  // fp32, as rope() computes it
        const double c = std::cos(double(angle)) * mscale, s = std::sin(double(angle)) * mscale;
        const size_t a = size_t((t * heads + h) * hd + i), b = a + size_t(half);
        y[a] = x[a] * c - x[b] * s;
        y[b] = x[b] * c + x[a] * s;
      }
  return y;
}

inline std::vector<float> rope_inv_freq(int n_freq) {
  std::vector<float> f(static_cast<size_t>(n_freq));
  for (int i = 0; i < n_freq; ++i) f[size_t(i)] = float(std::pow(10000.0, -2.0 * i / (2 * n_freq)));
  return f;
}

// Packed causal GQA attention (ops::attention_train_forward): out [T, nh, hd]; when lse is
// given it receives the log-sum-exp of each (row, head)'s scaled scores.
inline std::vector<double> fwd_attention(const std::vector<double>& q, const std::vector<double>& k,
                                         const std::vector<double>& v, int64_t nh, int64_t nkv, int64_t hd,
                                         const std::vector<int32_t>& cu, int window, double scale,
                                         std::vector<double>* lse = nullptr) {
  const int64_t T = cu.back();
  std::vector<double> out(size_t(T * nh * hd), 0.0), s;
  if (lse) lse->assign(size_t(T * nh), 0.0);
  for (size_t seg = 0; seg + 1 < cu.size(); ++seg)
    for (int64_t t = cu[seg]; t < cu[seg + 1]; ++t)
      for (int64_t h = 0; h < nh; ++h) {
        const int64_t kvh = h / (nh / nkv);
        const int64_t lo = window > 0 ? std::max<int64_t>(cu[seg], t - window + 1) : cu[seg];
        s.clear();
        for (int64_t j = lo; j <= t; ++j) {
          double d = 0.0;
          for (int64_t e = 0; e < hd; ++e) d += q[size_t((t * nh + h) * hd + e)] * k[size_t((j * nkv + kvh) * hd + e)];
          s.push_back(d * scale);
        }
        const double mx = *std::max_element(s.begin(), s.end());
        double sum = 0.0;
        for (double& x : s) sum += (x = std::exp(x - mx));
        if (lse) (*lse)[size_t(t * nh + h)] = mx + std::log(sum);
        for (int64_t j = lo; j <= t; ++j)
          for (int64_t e = 0; e < hd; ++e)
            out[size_t((t * nh + h) * hd + e)] += s[size_t(j - lo)] / sum * v[size_t((j * nkv + kvh) * hd + e)];
      }
  return out;
}

}  // namespace brisk::gradcheck
