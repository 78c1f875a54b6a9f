#include "infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"

namespace brisk::infer {
namespace {

// Softmax of the candidates' logits into prob. exp in fp32 (cheap over 150k tokens), sum and
// normalisation in double. The largest logit gets exp(0) = 1, so finite logits never sum to 0;
// all -inf or a NaN makes every probability NaN, which sample() reports.
void softmax(const std::vector<std::pair<float, int32_t>>& cand, std::vector<double>& prob) {
  float mx = -INFINITY;
  for (auto& c : cand) mx = std::max(mx, c.first);
  prob.resize(cand.size());
  double sum = 0.0;
  for (size_t i = 0; i < cand.size(); ++i) sum += prob[i] = double(std::exp(cand[i].first - mx));
  for (double& p : prob) p /= sum;
}

bool by_id(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) { return a.second < b.second; }

}  // namespace

Sampler::Sampler(SamplingParams p) : p_(p), rng_(p.seed) {
  BRISK_CHECK(p_.temperature >= 0.0f && std::isfinite(p_.temperature), "temperature must be >= 0 (got ",
              p_.temperature, ")");
  BRISK_CHECK(p_.top_k >= 0, "top_k must be >= 0 (got ", p_.top_k, ")");
  BRISK_CHECK(p_.top_p > 0.0f && p_.top_p <= 1.0f, "top_p must be in (0, 1] (got ", p_.top_p, ")");
  BRISK_CHECK(p_.min_p >= 0.0f && p_.min_p <= 1.0f, "min_p must be in [0, 1] (got ", p_.min_p, ")");
  BRISK_CHECK(p_.repetition_penalty > 0.0f && std::isfinite(p_.repetition_penalty),
              "repetition_penalty must be > 0 (got ", p_.repetition_penalty, ")");
  BRISK_CHECK(std::isfinite(p_.presence_penalty) && std::isfinite(p_.frequency_penalty),
              "presence_penalty and frequency_penalty must be finite");
}

void Sampler::apply_penalties(float* logits, int64_t vocab, const std::vector<int32_t>& history) {
  const bool rep = p_.repetition_penalty != 1.0f;
  const bool openai = p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f;
  if (!rep && !openai) return;
  if (counts_.size() != size_t(vocab)) counts_.assign(size_t(vocab), 0);
  for (int32_t id : history) {
    BRISK_CHECK(id >= 0 && id < vocab, "token id ", id, " in the history is out of range for vocabulary size ",
                vocab);
    ++counts_[size_t(id)];
  }
  // Each distinct id once: the first time it is met, its count is consumed and reset to 0.
  for (int32_t id : history) {
    int32_t n = counts_[size_t(id)];
    if (n == 0) continue;
    counts_[size_t(id)] = 0;
    float& l = logits[id];
    if (rep) l = l < 0.0f ? l * p_.repetition_penalty : l / p_.repetition_penalty;
    if (openai) l -= p_.presence_penalty + p_.frequency_penalty * float(n);
  }
}

int32_t Sampler::sample(float* logits, int64_t vocab, const std::vector<int32_t>& history) {
  BRISK_CHECK(vocab > 0 && vocab <= INT32_MAX, "sampling needs a vocabulary size in [1, 2^31) (got ", vocab, ")");
  apply_penalties(logits, vocab, history);

  if (p_.greedy()) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (logits[i] > logits[best]) best = i;  // strict: ties go to the lowest id, as torch.argmax
    return int32_t(best);
  }

  if (p_.temperature != 1.0f)
    for (int64_t i = 0; i < vocab; ++i) logits[i] /= p_.temperature;

  // Plain temperature sampling: no candidate list, one pass for the max, one for exp and sum.
  if (p_.top_k == 0 && p_.top_p >= 1.0f && p_.min_p == 0.0f) return sample_all(logits, vocab);

  // Candidates (logit, id), always kept in id order so the draw does not depend on how a
  // selection algorithm happened to permute them.
  cand_.clear();
  if (p_.top_k > 0 && p_.top_k < vocab) {
    // The k-th largest logit through a size-k min-heap: one pass, mostly a compare per token.
    heap_.assign(logits, logits + p_.top_k);
    std::make_heap(heap_.begin(), heap_.end(), std::greater<float>());
    for (int64_t i = p_.top_k; i < vocab; ++i) {
      if (logits[i] <= heap_.front()) continue;
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<float>());
      heap_.back() = logits[i];
      std::push_heap(heap_.begin(), heap_.end(), std::greater<float>());
    }
    const float threshold = heap_.front();
    // Ties with the threshold all stay, as in HF's TopKLogitsWarper (scores < kth are dropped).
    for (int64_t i = 0; i < vocab; ++i)
      if (logits[i] >= threshold) cand_.push_back({logits[i], int32_t(i)});
  } else {
    cand_.resize(size_t(vocab));
    for (int64_t i = 0; i < vocab; ++i) cand_[size_t(i)] = {logits[i], int32_t(i)};
  }

  if (p_.top_p < 1.0f && cand_.size() > 1) {
    softmax(cand_, prob_);
    const double drop_mass = 1.0 - double(p_.top_p);
    // Tokens with p <= drop_mass / n are all in the dropped tail (their total is <= drop_mass
    // and they are the least likely), so only the others need sorting.
    const double sure_drop = drop_mass / double(cand_.size());
    double dropped = 0.0;
    std::vector<std::pair<double, size_t>> rest;  // (prob, index into cand_)
    for (size_t i = 0; i < cand_.size(); ++i) {
      if (prob_[i] <= sure_drop) dropped += prob_[i];
      else rest.push_back({prob_[i], i});
    }
    std::sort(rest.begin(), rest.end(), [&](auto& a, auto& b) {
      return a.first != b.first ? a.first < b.first : cand_[a.second].second > cand_[b.second].second;
    });
    size_t first_kept = 0;  // ascending: drop while the cumulative mass stays <= drop_mass
    while (first_kept + 1 < rest.size() && dropped + rest[first_kept].first <= drop_mass)
      dropped += rest[first_kept++].first;
    if (rest.empty()) {  // everything was tiny: keep the single most likely token
      size_t best = size_t(std::max_element(prob_.begin(), prob_.end()) - prob_.begin());
      rest.push_back({prob_[best], best});
    }
    std::vector<std::pair<float, int32_t>> kept;
    for (size_t j = first_kept; j < rest.size(); ++j) kept.push_back(cand_[rest[j].second]);
    std::sort(kept.begin(), kept.end(), by_id);
    cand_.swap(kept);
  }

  if (p_.min_p > 0.0f && cand_.size() > 1) {
    softmax(cand_, prob_);
    const double cut = double(p_.min_p) * *std::max_element(prob_.begin(), prob_.end());
    size_t w = 0;
    for (size_t i = 0; i < cand_.size(); ++i)
      if (!(prob_[i] < cut)) cand_[w++] = cand_[i];  // order (by id) preserved
    cand_.resize(w);
  }

  softmax(cand_, prob_);
  BRISK_CHECK(std::isfinite(prob_[0]), "cannot sample: the logits are all -inf or contain NaN");
  return draw();
}

int32_t Sampler::sample_all(const float* logits, int64_t vocab) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, logits[i]);
  weights_.resize(size_t(vocab));
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += weights_[size_t(i)] = std::exp(logits[i] - mx);
  BRISK_CHECK(std::isfinite(sum) && sum > 0, "cannot sample: the logits are all -inf or contain NaN");
  const double target = rng_.uniform_double() * sum;
  double acc = 0.0;
  int64_t last_nonzero = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (weights_[size_t(i)] == 0.0f) continue;
    last_nonzero = i;
    acc += weights_[size_t(i)];
    if (target < acc) return int32_t(i);
  }
  return int32_t(last_nonzero);  // rounding left acc a hair below the target
}

int32_t Sampler::draw() {
  double u = rng_.uniform_double(), acc = 0.0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    acc += prob_[i];
    if (u < acc) return cand_[i].second;
  }
  // Rounding left acc a hair below 1 and u above it: the last token with nonzero mass.
  for (size_t i = cand_.size(); i-- > 0;)
    if (prob_[i] > 0) return cand_[i].second;
  return cand_.back().second;
}

}  // namespace brisk::infer
