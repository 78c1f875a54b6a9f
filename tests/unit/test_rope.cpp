// RoPE tables against the closed forms of transformers' modeling_rope_utils.py evaluated in
// double. Two checks per table: within 1e-6 relative of the exact formula (the fp32 pipeline
// cannot do better: 2i/d itself is rounded to fp32), and, where the double reference follows
// the same fp32 exponent, within 2 ulp of it (so a wrong formula or a wrong rounding of the
// exponent fails).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <string>

#include "core/error.h"
#include "model/rope.h"

namespace brisk {
namespace {

ModelConfig config(int64_t head_dim, double theta, RopeType type = RopeType::Default, double factor = 1.0) {
  ModelConfig c;
  c.head_dim = head_dim;
  c.rope_theta = theta;
  c.max_position_embeddings = 4096;
  c.rope_scaling.type = type;
  c.rope_scaling.factor = factor;
  return c;
}

// 1 / theta^(2i/d) with the exponent rounded to fp32, as transformers computes it.
double inv_freq_fp32_exponent(double theta, int64_t i, int64_t dim) {
  return 1.0 / std::pow(theta, double(float(2 * i) / float(dim)));
}

double ulp_distance(float a, double b) { return std::fabs(double(a) - b) / (std::nextafter(float(b), INFINITY) - float(b)); }

void expect_table(const std::string& what, const RopeTable& t, const std::vector<double>& exact,
                  const std::vector<double>& same_exponent) {
  ASSERT_EQ(t.inv_freq.size(), exact.size()) << what;
  ASSERT_EQ(size_t(t.n_freq), exact.size()) << what;
  double rel = 0, ulps = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    rel = std::max(rel, std::fabs(t.inv_freq[i] - exact[i]) / exact[i]);
    if (!same_exponent.empty()) ulps = std::max(ulps, ulp_distance(t.inv_freq[i], same_exponent[i]));
  }
  std::printf("  %-40s max rel err vs exact %.3g, max ulp vs fp32-exponent reference %.2f\n", what.c_str(), rel, ulps);
  EXPECT_LE(rel, 1e-6) << what;
  EXPECT_LE(ulps, 2.0) << what;
}

TEST(RopeTable, Default) {
  for (auto [dim, theta] : {std::pair{64, 10000.0}, std::pair{128, 500000.0}, std::pair{128, 1000000.0},
                            std::pair{256, 10000.0}, std::pair{2, 10000.0}, std::pair{80, 10000.0}}) {
    RopeTable t = make_rope_table(config(dim, theta));
    std::vector<double> exact, same;
    for (int64_t i = 0; i < dim / 2; ++i) {
      exact.push_back(std::pow(theta, -2.0 * double(i) / double(dim)));
      same.push_back(inv_freq_fp32_exponent(theta, i, dim));
    }
    EXPECT_EQ(t.mscale, 1.0f);
    expect_table("default d=" + std::to_string(dim) + " theta=" + std::to_string(int64_t(theta)), t, exact, same);
    EXPECT_EQ(t.inv_freq[0], 1.0f);
  }
}

TEST(RopeTable, Linear) {
  for (double factor : {2.0, 4.0, 3.0}) {
    RopeTable t = make_rope_table(config(128, 10000.0, RopeType::Linear, factor));
    std::vector<double> exact, same;
    for (int64_t i = 0; i < 64; ++i) {
      exact.push_back(std::pow(10000.0, -2.0 * double(i) / 128.0) / factor);
      // fp32: reciprocal rounded, then divided by factor and rounded again (3 roundings in all)
      same.push_back(double(float(float(inv_freq_fp32_exponent(10000.0, i, 128)) / float(factor))));
    }
    EXPECT_EQ(t.mscale, 1.0f);
    expect_table("linear factor=" + std::to_string(factor), t, exact, same);
  }
}

TEST(RopeTable, DynamicAtBaseLengthIsDefault) {
  RopeTable d = make_rope_table(config(128, 10000.0, RopeType::Dynamic, 4.0));
  RopeTable ref = make_rope_table(config(128, 10000.0));
  EXPECT_EQ(d.inv_freq, ref.inv_freq);
  RopeTable at_max = make_rope_table(config(128, 10000.0, RopeType::Dynamic, 4.0), 4096);
  EXPECT_EQ(at_max.inv_freq, ref.inv_freq);
}

TEST(RopeTable, DynamicBeyondBaseLength) {
  const double factor = 2.0, theta = 10000.0;
  const int64_t dim = 64, seq = 10000, max_pos = 4096;
  RopeTable t = make_rope_table(config(dim, theta, RopeType::Dynamic, factor), seq);
  double base = theta * std::pow(factor * double(seq) / double(max_pos) - (factor - 1), double(dim) / double(dim - 2));
  std::vector<double> exact, same;
  for (int64_t i = 0; i < dim / 2; ++i) {
    exact.push_back(std::pow(base, -2.0 * double(i) / double(dim)));
    same.push_back(1.0 / std::pow(double(float(base)), double(float(2 * i) / float(dim))));
  }
  expect_table("dynamic factor=2 seq=10000", t, exact, same);
  EXPECT_LT(t.inv_freq.back(), make_rope_table(config(dim, theta)).inv_freq.back());  // longer wavelengths
}

// Llama 3.1 8B: head_dim 128, theta 500000, factor 8, low 1, high 4, original 8192.
TEST(RopeTable, Llama3) {
  for (auto [factor, low, high, orig] :
       {std::tuple{8.0, 1.0, 4.0, int64_t(8192)}, std::tuple{32.0, 1.0, 4.0, int64_t(8192)},
        std::tuple{4.0, 2.0, 8.0, int64_t(4096)}}) {
    ModelConfig c = config(128, 500000.0, RopeType::Llama3, factor);
    c.rope_scaling.low_freq_factor = low;
    c.rope_scaling.high_freq_factor = high;
    c.rope_scaling.original_max_position_embeddings = orig;
    RopeTable t = make_rope_table(c);
    std::vector<double> exact;
    int kept = 0, divided = 0, smoothed = 0;
    for (int64_t i = 0; i < 64; ++i) {
      double f = std::pow(500000.0, -2.0 * double(i) / 128.0);
      double wavelen = 2 * std::numbers::pi / f, lo = double(orig) / low, hi = double(orig) / high;
      if (wavelen < hi) {
        exact.push_back(f), ++kept;
      } else if (wavelen > lo) {
        exact.push_back(f / factor), ++divided;
      } else {
        double s = (double(orig) / wavelen - low) / (high - low);
        exact.push_back((1 - s) * f / factor + s * f), ++smoothed;
      }
    }
    std::printf("  llama3 factor=%g: %d kept, %d divided, %d smoothed\n", factor, kept, divided, smoothed);
    EXPECT_GT(kept, 0);
    EXPECT_GT(divided, 0);
    EXPECT_GT(smoothed, 0);  // the three bands are all exercised
    EXPECT_EQ(t.mscale, 1.0f);
    expect_table("llama3 factor=" + std::to_string(factor), t, exact, {});
  }
}

TEST(RopeTable, Yarn) {
  struct Case {
    int64_t dim;
    double theta, factor;
    int64_t orig;
    double attention_factor, beta_fast, beta_slow;
  };
  // Qwen3-style (factor 4 over 32768), a DeepSeek-like small dim, explicit attention_factor.
  for (Case c : {Case{128, 1000000.0, 4.0, 32768, 0.0, 32.0, 1.0}, Case{64, 10000.0, 16.0, 4096, 0.0, 32.0, 1.0},
                 Case{128, 10000.0, 2.0, 2048, 1.5, 16.0, 2.0}, Case{128, 500000.0, 8.0, 0, 0.0, 32.0, 1.0}}) {
    ModelConfig cfg = config(c.dim, c.theta, RopeType::Yarn, c.factor);
    cfg.rope_scaling.original_max_position_embeddings = c.orig;
    cfg.rope_scaling.attention_factor = c.attention_factor;
    cfg.rope_scaling.beta_fast = c.beta_fast;
    cfg.rope_scaling.beta_slow = c.beta_slow;
    RopeTable t = make_rope_table(cfg);
    double orig = c.orig > 0 ? double(c.orig) : double(cfg.max_position_embeddings);
    auto corr = [&](double rot) {
      return double(c.dim) * std::log(orig / (rot * 2 * std::numbers::pi)) / (2 * std::log(c.theta));
    };
    double low = std::max(0.0, std::floor(corr(c.beta_fast))), high = std::min(double(c.dim - 1), std::ceil(corr(c.beta_slow)));
    std::vector<double> exact;
    int extrapolated = 0, interpolated = 0;
    for (int64_t i = 0; i < c.dim / 2; ++i) {
      double f = std::pow(c.theta, -2.0 * double(i) / double(c.dim));
      double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);  // 0: extrapolate, 1: interpolate
      extrapolated += ramp == 0.0, interpolated += ramp == 1.0;
      exact.push_back(f / c.factor * ramp + f * (1 - ramp));
    }
    EXPECT_GT(extrapolated, 0);
    EXPECT_GT(interpolated, 0);
    double mscale = c.attention_factor > 0 ? c.attention_factor : 0.1 * std::log(c.factor) + 1.0;
    EXPECT_EQ(t.mscale, float(mscale));
    expect_table("yarn d=" + std::to_string(c.dim) + " factor=" + std::to_string(c.factor), t, exact, {});
  }
}

TEST(RopeTable, RejectsBadConfigs) {
  auto expect_error = [](const ModelConfig& c, const std::string& needle) {
    try {
      make_rope_table(c);
      ADD_FAILURE() << "no error, expected one mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(config(127, 10000.0), "head_dim");
  expect_error(config(0, 10000.0), "head_dim");
  expect_error(config(128, 0.0), "rope_theta");
  expect_error(config(128, 10000.0, RopeType::Linear, 0.0), "factor");
  ModelConfig l3 = config(128, 500000.0, RopeType::Llama3, 8.0);
  l3.rope_scaling.original_max_position_embeddings = 0;
  expect_error(l3, "original_max_position_embeddings");
}

}  // namespace
}  // namespace brisk
