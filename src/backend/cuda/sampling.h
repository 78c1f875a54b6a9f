// Token sampling on the GPU, with infer/sampler.h's semantics (Hugging Face's logits processors
// in their order): penalties, then greedy argmax (ties to the lowest id, exactly as the CPU), or
// temperature, top_k (ties at the threshold all stay), top_p (drop the least likely while their
// mass <= 1 - top_p, never all), min_p, and a draw from the renormalised survivors.
//
// The cut-offs run on a copy of the row sorted by logit, descending (CUB's stable radix sort, so
// equal logits keep id order: the same tie order as the CPU's sort), where every cut-off keeps a
// prefix. The uniform number u of the draw comes from the caller (the host Sampler's Rng), so a
// seed still fixes the output; the draw walks the survivors in a different order than the CPU,
// so the same u may pick a different (equally valid) token. Device pointers, asynchronous on
// `stream`, checked.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace brisk::cuda {

// out_ids[r] = argmax of logits row r ([rows, vocab] f32): the lowest id among equal maxima.
void launch_argmax(const float* logits, int64_t rows, int64_t vocab, int32_t* out_ids, cudaStream_t stream);

// Penalties on one logits row, over the n distinct ids of the history with their occurrence
// counts: repetition (logit < 0 ? logit * r : logit / r, when r != 1), then
// logit -= presence + frequency * count (when either is nonzero). ids must be distinct and in
// [0, vocab) (checked on the host by the caller).
void launch_penalties(float* logits_row, const int32_t* ids, const int32_t* counts, int n, float repetition,
                      float presence, float frequency, cudaStream_t stream);

struct SampleCutoffs {
  float temperature = 1.0f;  // > 0 (greedy is launch_argmax)
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
};

// Device workspace launch_sample needs for a vocabulary of this size.
size_t sample_workspace_bytes(int64_t vocab);

// *out_id = a token drawn from logits_row ([vocab] f32, read only) after temperature and the
// cut-offs, using u in [0, 1). workspace: sample_workspace_bytes(vocab) bytes.
void launch_sample(const float* logits_row, int64_t vocab, const SampleCutoffs& c, double u, void* workspace,
                   size_t workspace_bytes, int32_t* out_id, cudaStream_t stream);

}  // namespace brisk::cuda
