// Attention of new query tokens against a bf16 KV cache on the GPU (inference), and the kernel
// that appends new keys/values to the cache. Same semantics as ops::attention (backend/ops.h):
// causal with an offset (a token at position p sees cache positions max(0, p - window + 1) .. p),
// grouped-query (query head h uses kv head h / (n_head / n_kv_head)), scale on q.k, optional
// softcap, fp32 accumulation, online softmax.
//
// Cache layout, one layer: [slot][position][kv_head][head_dim] bf16; `cache` points at the layer.
// Every query token carries its slot and position in device arrays, so one launch serves a
// prefill chunk (many tokens, one slot) and a batched decode step (one token, many slots) alike,
// and a captured CUDA graph replays for every token (positions are read on the device).
//
// Long caches are split over the context (flash-decoding): `splits` blocks per (token, head)
// each reduce a contiguous range of positions into a partial (max, sum, acc[hd]) in f32 scratch,
// and a second kernel combines them. Device pointers, asynchronous on `stream`, checked.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace brisk::cuda {

struct AttentionDecodeShape {
  int n_head = 0, n_kv_head = 0, head_dim = 0;
  int64_t capacity = 0;  // positions per slot in the cache
  float scale = 1.0f;
  int window = 0;        // <= 0: unlimited
  float softcap = 0.0f;  // <= 0: off
};

// Largest number of context splits the kernels support.
constexpr int kMaxAttentionSplits = 64;

// f32 scratch bytes for n_tokens queries with `splits` context splits.
size_t attention_decode_scratch_bytes(int64_t n_tokens, const AttentionDecodeShape& s, int splits);

// cache_k/v[slot][tok_pos[t]] = k/v[t] for t < n_tokens. k, v [n_tokens, n_kv_head, head_dim].
void launch_kv_append(const __nv_bfloat16* k, const __nv_bfloat16* v, const int32_t* tok_slot,
                      const int32_t* tok_pos, __nv_bfloat16* cache_k, __nv_bfloat16* cache_v, int64_t n_tokens,
                      const AttentionDecodeShape& s, cudaStream_t stream);

// out[t] = attention of q[t] ([n_head, head_dim]) over its slot's cache rows. The cache must
// already hold the token's own key/value (launch_kv_append first). scratch:
// attention_decode_scratch_bytes(n_tokens, s, splits) bytes; splits in [1, kMaxAttentionSplits].
void launch_attention_decode(const __nv_bfloat16* q, const __nv_bfloat16* cache_k, const __nv_bfloat16* cache_v,
                             const int32_t* tok_slot, const int32_t* tok_pos, __nv_bfloat16* out, float* scratch,
                             int64_t n_tokens, const AttentionDecodeShape& s, int splits, cudaStream_t stream);

}  // namespace brisk::cuda
