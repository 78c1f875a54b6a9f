// Attention of new query tokens against a bf16 KV cache on the GPU (inference), and the kernel
// that prepares them (q/k norm, RoPE) and appends the new keys/values to the cache. Same semantics as ops::attention (backend/ops.h):
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
// and the last of them to finish merges the partials (one launch). Device pointers, asynchronous
// on `stream`, checked; launched with programmatic dependent launch (pdl.cuh).
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
// Bytes of the arrival counters for n_tokens queries (any number of splits). They must be zero
// before the first launch (cudaMemset once after allocation); every launch leaves them zero.
size_t attention_decode_counter_bytes(int64_t n_tokens, const AttentionDecodeShape& s);

// RoPE and its table for the decode kernels: inv_freq [n_freq] f32 on the device, rotating the
// pairs (i, i + n_freq) of each head, cos/sin scaled by mscale (model/rope.h's RopeTable).
struct DecodeRope {
  const float* inv_freq = nullptr;
  int n_freq = 0;
  float mscale = 1.0f;
};

// For every token t: q[t] ([n_head, head_dim]) and k[t] ([n_kv_head, head_dim]) normalised per
// head by q_norm / k_norm ([head_dim] f32, RMSNorm with eps; null = none, as qwen3's q/k norm),
// rotated in place at position tok_pos[t], then cache_k/v[tok_slot[t]][tok_pos[t]] = k[t] / v[t].
// One launch; the same results as launch_rmsnorm + launch_rope + a copy.
void launch_rope_kv_append(__nv_bfloat16* q, __nv_bfloat16* k, const __nv_bfloat16* v, const float* q_norm,
                           const float* k_norm, float eps, const DecodeRope& rope, const int32_t* tok_slot,
                           const int32_t* tok_pos, __nv_bfloat16* cache_k, __nv_bfloat16* cache_v, int64_t n_tokens,
                           const AttentionDecodeShape& s, cudaStream_t stream);

// out[t] = attention of q[t] ([n_head, head_dim]) over its slot's cache rows. The cache must
// already hold the token's own key/value (launch_rope_kv_append first). With splits > 1:
// scratch of attention_decode_scratch_bytes(n_tokens, s, splits) bytes and counters of
// attention_decode_counter_bytes(n_tokens, s) bytes (zeroed once); splits in
// [1, kMaxAttentionSplits]. With one split neither is touched.
void launch_attention_decode(const __nv_bfloat16* q, const __nv_bfloat16* cache_k, const __nv_bfloat16* cache_v,
                             const int32_t* tok_slot, const int32_t* tok_pos, __nv_bfloat16* out, float* scratch,
                             unsigned* counters, int64_t n_tokens, const AttentionDecodeShape& s, int splits,
                             cudaStream_t stream);

}  // namespace brisk::cuda
