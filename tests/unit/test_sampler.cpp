// Sampler: penalties on crafted logits (exact values), greedy, and the top-k / top-p / min-p
// cut-offs by sampling many times from crafted distributions with a fixed seed: excluded tokens
// must never appear and every kept token's frequency must be within 5 standard deviations
// (binomial) of its renormalised probability.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "infer/sampler.h"

namespace brisk::infer {
namespace {

// Logits whose softmax is exactly proportional to `weights` (0 weight -> -inf).
std::vector<float> logits_for(const std::vector<double>& weights) {
  std::vector<float> l;
  for (double w : weights) l.push_back(w > 0 ? float(std::log(w)) : -INFINITY);
  return l;
}

std::vector<int64_t> histogram(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int64_t> h(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = logits;  // sample() may modify its input
    int32_t t = s.sample(l.data(), int64_t(l.size()), {});
    EXPECT_TRUE(t >= 0 && size_t(t) < l.size());
    ++h[size_t(t)];
  }
  return h;
}

// expected: the renormalised target distribution (0 = must never appear).
void expect_frequencies(const std::string& what, const std::vector<int64_t>& h, std::vector<double> expected) {
  double total = 0;
  for (double e : expected) total += e;
  int64_t n = 0;
  for (int64_t c : h) n += c;
  double worst = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    double p = expected[i] / total;
    if (p == 0) {
      EXPECT_EQ(h[i], 0) << what << ": excluded token " << i << " was sampled";
      continue;
    }
    if (p == 1) {
      EXPECT_EQ(h[i], n) << what << ": the only kept token " << i;
      continue;
    }
    double sd = std::sqrt(double(n) * p * (1 - p));
    double z = std::fabs(double(h[i]) - double(n) * p) / sd;
    worst = std::max(worst, z);
    EXPECT_LE(z, 5.0) << what << ": token " << i << " sampled " << h[i] << " times, expected " << double(n) * p;
  }
  std::printf("  %-50s worst deviation %.2f sd\n", what.c_str(), worst);
}

constexpr int kDraws = 100000;

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  Rng rng(5);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> l(1000);
    for (float& v : l) v = rng.normal();
    size_t best = size_t(std::max_element(l.begin(), l.end()) - l.begin());  // first maximum
    for (SamplingParams p : {SamplingParams{.temperature = 0.0f}, SamplingParams{.top_k = 1}}) {
      Sampler s(p);
      std::vector<float> copy = l;
      EXPECT_EQ(s.sample(copy.data(), 1000, {}), int32_t(best));
    }
  }
  std::vector<float> ties = {1.0f, 3.0f, 2.0f, 3.0f, 3.0f};
  Sampler s(SamplingParams{.temperature = 0.0f});
  EXPECT_EQ(s.sample(ties.data(), 5, {}), 1);
}

TEST(Sampler, RepetitionPenaltyOncePerDistinctToken) {
  std::vector<float> l = {2.0f, -2.0f, 1.0f, 0.5f};
  Sampler s(SamplingParams{.temperature = 0.0f, .repetition_penalty = 2.0f});
  // Token 1 occurs twice but is penalised once; token 3 is absent.
  int32_t t = s.sample(l.data(), 4, {0, 1, 1, 2});
  EXPECT_EQ(l, (std::vector<float>{1.0f, -4.0f, 0.5f, 0.5f}));
  EXPECT_EQ(t, 0);
  // The penalty can change the greedy choice: 0 was the argmax before.
  std::vector<float> l2 = {2.0f, 1.5f};
  EXPECT_EQ(s.sample(l2.data(), 2, {0}), 1);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
  std::vector<float> l = {1.0f, 1.0f, 1.0f, 1.0f};
  Sampler s(SamplingParams{.temperature = 0.0f, .presence_penalty = 0.5f, .frequency_penalty = 0.25f});
  s.sample(l.data(), 4, {2, 2, 3, 2});
  EXPECT_EQ(l, (std::vector<float>{1.0f, 1.0f, 1.0f - 0.5f - 0.75f, 1.0f - 0.5f - 0.25f}));
}

TEST(Sampler, RepetitionPenaltyBeforePresenceAndFrequency) {
  std::vector<float> l = {3.0f, -1.0f};
  Sampler s(SamplingParams{.temperature = 0.0f, .repetition_penalty = 1.5f, .presence_penalty = 1.0f,
                           .frequency_penalty = 0.5f});
  s.sample(l.data(), 2, {0, 0, 1});
  EXPECT_EQ(l[0], 3.0f / 1.5f - 1.0f - 0.5f * 2);
  EXPECT_EQ(l[1], -1.0f * 1.5f - 1.0f - 0.5f);
}

TEST(Sampler, TemperatureOnlyMatchesSoftmax) {
  std::vector<float> l = {1.0f, 2.0f, 0.0f, -1.0f, 1.5f};
  for (float temp : {1.0f, 0.5f, 2.0f}) {
    Sampler s(SamplingParams{.temperature = temp, .seed = 42});
    std::vector<double> w;
    for (float v : l) w.push_back(std::exp(double(v) / temp));
    expect_frequencies("temperature " + std::to_string(temp), histogram(s, l, kDraws), w);
  }
}

TEST(Sampler, TopK) {
  // Ids shuffled so that "top" is not "first".
  std::vector<double> w = {0.10, 0.30, 0.02, 0.20, 0.25, 0.13};
  Sampler s(SamplingParams{.top_k = 3, .seed = 1});
  expect_frequencies("top_k=3", histogram(s, logits_for(w), kDraws), {0, 0.30, 0, 0.20, 0.25, 0});
  // Ties at the k-th value are all kept, as HF's TopKLogitsWarper does.
  std::vector<float> tied = {5.0f, 3.0f, 3.0f, 1.0f};
  Sampler s2(SamplingParams{.top_k = 2, .seed = 2});
  expect_frequencies("top_k=2 with a tie at the threshold", histogram(s2, tied, kDraws),
                     {std::exp(5.0), std::exp(3.0), std::exp(3.0), 0});
}

TEST(Sampler, TopP) {
  std::vector<double> w = {0.05, 0.30, 0.15, 0.50};
  // top_p 0.75: the tail 0.05 + 0.15 = 0.20 <= 0.25 goes, 0.30 would push it past 0.25.
  Sampler a(SamplingParams{.top_p = 0.75f, .seed = 3});
  expect_frequencies("top_p=0.75", histogram(a, logits_for(w), kDraws), {0, 0.30, 0, 0.50});
  // top_p 0.85: only 0.05 fits in the 0.15 that may be dropped.
  Sampler b(SamplingParams{.top_p = 0.85f, .seed = 4});
  expect_frequencies("top_p=0.85", histogram(b, logits_for(w), kDraws), {0, 0.30, 0.15, 0.50});
  // Tiny top_p keeps exactly the most likely token.
  Sampler c(SamplingParams{.top_p = 0.01f, .seed = 5});
  expect_frequencies("top_p=0.01", histogram(c, logits_for(w), 2000), {0, 0, 0, 1});
}

TEST(Sampler, TopPLargeVocabularyWithLongTail) {
  // 10 heavy tokens at scattered ids holding 90% of the mass, a 50k-token tail holding 10%.
  const int V = 50000;
  std::vector<double> w(V, 0.10 / (V - 10)), expect(V, 0.0);
  double heavy[] = {0.2, 0.15, 0.12, 0.1, 0.09, 0.08, 0.06, 0.05, 0.03, 0.02};
  for (int i = 0; i < 10; ++i) w[size_t(i * 4999 + 7)] = heavy[i];
  // top_p 0.8: drop tail (0.1) + 0.02 + 0.03 + 0.05 = 0.2 <= 0.2? Use 0.79 to stay off the edge:
  // dropping 0.21 is allowed, so the tail, 0.02, 0.03 and 0.05 go (0.20 <= 0.21), 0.06 stays.
  for (int i = 0; i < 7; ++i) expect[size_t(i * 4999 + 7)] = heavy[i];
  Sampler s(SamplingParams{.top_p = 0.79f, .seed = 6});
  expect_frequencies("top_p=0.79 over 50k tokens", histogram(s, logits_for(w), 5000), expect);
}

TEST(Sampler, MinP) {
  std::vector<double> w = {0.04, 0.40, 0.20, 0.06, 0.30};
  Sampler s(SamplingParams{.min_p = 0.2f, .seed = 7});  // cut at 0.08
  expect_frequencies("min_p=0.2", histogram(s, logits_for(w), kDraws), {0, 0.40, 0.20, 0, 0.30});
}

TEST(Sampler, CutoffsCompose) {
  // Temperature 0.5 squares the weights: 0.09, 0.01, 0.0625, 0.0025, 0.04, 0.01 (sum 0.215).
  // top_k 4: the 4th largest is 0.01, shared by ids 1 and 5, so both stay; id 3 goes.
  // top_p 0.9 over the remaining 0.2125: ids 1 and 5 (0.047 each, 0.094 <= 0.1) go.
  // min_p 0.3: of 0.09, 0.0625, 0.04 (max share 0.468, cut 0.140), id 4 (0.208) stays.
  std::vector<double> w = {0.3, 0.1, 0.25, 0.05, 0.2, 0.1};
  std::vector<double> t(w.size());
  for (size_t i = 0; i < w.size(); ++i) t[i] = w[i] * w[i];
  Sampler s(SamplingParams{.temperature = 0.5f, .top_k = 4, .top_p = 0.9f, .min_p = 0.3f, .seed = 8});
  expect_frequencies("temperature+top_k+top_p+min_p", histogram(s, logits_for(w), kDraws),
                     {t[0], 0, t[2], 0, t[4], 0});
}

TEST(Sampler, SameSeedSameSequence) {
  Rng rng(9);
  std::vector<float> l(3000);
  for (float& v : l) v = rng.normal() * 3;
  auto run = [&](uint64_t seed) {
    Sampler s(SamplingParams{.temperature = 0.8f, .top_k = 50, .top_p = 0.95f, .seed = seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) {
      std::vector<float> c = l;
      out.push_back(s.sample(c.data(), int64_t(c.size()), out));
    }
    return out;
  };
  EXPECT_EQ(run(123), run(123));
  EXPECT_NE(run(123), run(124));
}

TEST(Sampler, RejectsBadInput) {
  EXPECT_THROW(Sampler(SamplingParams{.temperature = -1.0f}), Error);
  EXPECT_THROW(Sampler(SamplingParams{.top_k = -2}), Error);
  EXPECT_THROW(Sampler(SamplingParams{.top_p = 0.0f}), Error);
  EXPECT_THROW(Sampler(SamplingParams{.top_p = 1.5f}), Error);
  EXPECT_THROW(Sampler(SamplingParams{.min_p = -0.1f}), Error);
  EXPECT_THROW(Sampler(SamplingParams{.repetition_penalty = 0.0f}), Error);
  Sampler s(SamplingParams{.repetition_penalty = 1.1f});
  std::vector<float> l = {0.0f, 1.0f};
  try {
    s.sample(l.data(), 2, {1, 7});
    FAIL() << "no error for an out-of-range history id";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("7"), std::string::npos) << e.what();
  }
  std::vector<float> masked = {-INFINITY, -INFINITY};
  Sampler t(SamplingParams{});
  EXPECT_THROW(t.sample(masked.data(), 2, {}), Error);
}

}  // namespace
}  // namespace brisk::infer
