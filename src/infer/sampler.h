// Token sampling from a logits row, with the semantics of Hugging Face `generate`'s logits
// processors, applied in its order:
//   1. repetition_penalty over every distinct id in history: logit < 0 ? logit * p : logit / p
//   2. presence/frequency penalties (OpenAI): logit -= presence * (count > 0) + frequency * count,
//      where count is the number of occurrences in history (prompt included)
//   3. temperature: logit / temperature
//   4. top_k: keep tokens whose logit >= the k-th largest (ties at the threshold all stay, as
//      HF's TopKLogitsWarper)
//   5. top_p: drop the least likely tokens while their cumulative probability <= 1 - top_p
//      (HF's TopPLogitsWarper), i.e. keep the smallest head with mass >= top_p; never empty
//   6. min_p: drop tokens with probability < min_p * max probability
//   7. sample from the renormalised distribution (brisk::Rng seeded by `seed`).
// Greedy (temperature == 0 or top_k == 1): argmax after the penalties, ties to the lowest id.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "core/rng.h"

namespace brisk::infer {

struct SamplingParams {
  float temperature = 1.0f;        // 0 = greedy
  int top_k = 0;                   // 0 = off
  float top_p = 1.0f;              // 1 = off
  float min_p = 0.0f;              // 0 = off
  float repetition_penalty = 1.0f; // 1 = off
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  bool greedy() const { return temperature == 0.0f || top_k == 1; }
};

class Sampler {
 public:
  // Throws brisk::Error for out-of-range parameters (negative temperature, top_p outside (0, 1],
  // min_p outside [0, 1], negative top_k, repetition_penalty <= 0).
  explicit Sampler(SamplingParams p);

  // Picks the next token. logits[vocab] is modified in place (penalties, temperature). history
  // is the prompt plus the tokens generated so far; an id outside [0, vocab) is a brisk::Error.
  // Cost: O(vocab + history) for temperature / min_p sampling, O(vocab log k) worst case (one
  // compare per token typically) for top_k, and top_p sorts only the tokens that can survive it.
  int32_t sample(float* logits, int64_t vocab, const std::vector<int32_t>& history);

  const SamplingParams& params() const { return p_; }
  // The next uniform number in [0, 1) of this sampler's stream, for a device that draws the
  // token itself (infer/cuda): the seed still fixes the output.
  double next_uniform() { return rng_.uniform_double(); }

 private:
  void apply_penalties(float* logits, int64_t vocab, const std::vector<int32_t>& history);
  int32_t sample_all(const float* logits, int64_t vocab);  // no cut-offs: straight from logits
  int32_t draw();                                          // from cand_ with probabilities prob_

  SamplingParams p_;
  Rng rng_;
  std::vector<int32_t> counts_;                     // per-id occurrences (scratch, kept zeroed)
  std::vector<std::pair<float, int32_t>> cand_;     // (logit, id) of the surviving tokens
  std::vector<double> prob_;                        // scratch probabilities of cand_
  std::vector<float> heap_;                         // top_k selection scratch
  std::vector<float> weights_;                      // exp(logit - max) for sample_all
};

}  // namespace brisk::infer
