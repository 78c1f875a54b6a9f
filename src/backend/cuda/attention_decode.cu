// Decode attention over the bf16 KV cache (flash-decoding). Pass 1: one block of kWarps warps per
// (token, head, split); each warp walks every kWarps-th position of the split with an online
// softmax (running max m, running sum l, running weighted sum acc), the lanes of a warp sharing
// the head dimension (lane owns dims lane, lane + 32, ...); the warps then merge into the block's
// partial (m, l, acc[hd]). With one split that is the answer; otherwise the partial goes to f32
// scratch and the LAST block of its (token, head) to finish (a per-(token, head) arrival counter,
// reset by that block, so no second kernel) merges the splits:
//   M = max m_s,  out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
// An empty split (short context) writes m = -inf, l = 0, which the merge weighs as zero; every
// query sees at least its own position, so M is finite.
//
// rope_kv_append_kernel prepares the inputs in one launch: per (token, head) block, the optional
// q/k RMSNorm (qwen3), RoPE in place, and for key heads the write of k and v into the cache.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "backend/cuda/attention_decode.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/pdl.cuh"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 256;
constexpr int kPerLane = kMaxHeadDim / kWarp;  // head dims one lane holds

// Partial record of one (token, head, split): m, l, then acc[hd].
__host__ __device__ inline int64_t partial_stride(int hd) { return int64_t(hd) + 2; }

constexpr int kRopeThreads = 128;

// Block (t, hh): query head hh < n_head, else key head hh - n_head (and its value head). The
// arithmetic is launch_rmsnorm's (bf16 result) followed by launch_rope's, so the cache holds
// exactly what the separate kernels wrote.
__global__ void __launch_bounds__(kRopeThreads)
    rope_kv_append_kernel(__nv_bfloat16* q, __nv_bfloat16* k, const __nv_bfloat16* v, const float* q_norm,
                          const float* k_norm, float eps, const float* inv_freq, int n_freq, float mscale,
                          const int32_t* tok_slot, const int32_t* tok_pos, __nv_bfloat16* cache_k,
                          __nv_bfloat16* cache_v, int64_t capacity, int n_head, int n_kv_head, int hd) {
  __shared__ float vals[kMaxHeadDim];
  const int64_t t = blockIdx.x;
  const bool is_q = int(blockIdx.y) < n_head;
  const int head = is_q ? int(blockIdx.y) : int(blockIdx.y) - n_head;
  __nv_bfloat16* x = is_q ? q + (t * n_head + head) * hd : k + (t * n_kv_head + head) * hd;
  const float* norm = is_q ? q_norm : k_norm;
  pdl_trigger();
  pdl_wait();
  for (int d = threadIdx.x; d < hd; d += blockDim.x) vals[d] = to_f32(x[d]);
  if (norm != nullptr) {  // uniform over the block: every thread reaches block_sum
    float ss = 0.0f;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) ss += vals[d] * vals[d];
    ss = block_sum(ss);
    const float inv = 1.0f / sqrtf(ss / float(hd) + eps);
    for (int d = threadIdx.x; d < hd; d += blockDim.x)
      vals[d] = to_f32(from_f32<__nv_bfloat16>((vals[d] * inv) * norm[d]));
  }
  __syncthreads();
  const float pos = float(tok_pos[t]);
  const int64_t row = int64_t(n_kv_head) * hd;
  const int64_t dst = (int64_t(tok_slot[t]) * capacity + tok_pos[t]) * row + int64_t(head) * hd;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float r = vals[d];
    if (d < 2 * n_freq) {
      const int i = d < n_freq ? d : d - n_freq;
      const float angle = __fmul_rn(pos, inv_freq[i]);  // one fp32 rounding, as transformers
      float sn, cs;
      sincosf(angle, &sn, &cs);
      cs *= mscale;
      sn *= mscale;
      const float a = vals[i], b = vals[i + n_freq];
      r = d < n_freq ? a * cs - b * sn : b * cs + a * sn;
    }
    const __nv_bfloat16 o = from_f32<__nv_bfloat16>(r);
    x[d] = o;  // in place: the other threads read vals, not x
    if (!is_q) {
      cache_k[dst + d] = o;
      cache_v[dst + d] = v[(t * n_kv_head + head) * hd + d];
    }
  }
}

// out = merge of the `splits` partials of each of `heads` consecutive (token, head) records
// (see the top of the file); the block's threads share the heads x hd outputs. Partials written
// by other blocks are read through L2 (__ldcg), never a stale L1 line.
__device__ void merge_splits(const float* part, __nv_bfloat16* out, int splits, int hd, int heads = 1) {
  const int64_t ps = partial_stride(hd);
  for (int i = threadIdx.x; i < heads * hd; i += blockDim.x) {
    const int h = i / hd, d = i % hd;
    const float* ph = part + int64_t(h) * splits * ps;
    float M = -INFINITY;
#pragma unroll 8
    for (int s = 0; s < splits; ++s) M = fmaxf(M, __ldcg(ph + s * ps));
    float L = 0.0f, a = 0.0f;
#pragma unroll 8
    for (int s = 0; s < splits; ++s) {
      const float m = __ldcg(ph + s * ps);
      const float e = m == -INFINITY ? 0.0f : expf(m - M);  // an empty split weighs nothing
      L += __ldcg(ph + s * ps + 1) * e;
      a += __ldcg(ph + s * ps + 2 + d) * e;
    }
    out[int64_t(h) * hd + d] = from_f32<__nv_bfloat16>(a / L);
  }
}

__global__ void __launch_bounds__(kWarps * kWarp)
    attention_partial_kernel(const __nv_bfloat16* q, const __nv_bfloat16* cache_k, const __nv_bfloat16* cache_v,
                             const int32_t* tok_slot, const int32_t* tok_pos, float* scratch, unsigned* counters,
                             __nv_bfloat16* attn_out, int n_head, int n_kv_head, int hd, int64_t capacity,
                             float scale, int window, float softcap) {
  __shared__ float sm_m[kWarps], sm_l[kWarps];
  __shared__ bool sm_last;
  __shared__ float sm_acc[kWarps][kMaxHeadDim];
  const int64_t t = blockIdx.x / n_head;
  const int h = int(blockIdx.x % n_head), split = blockIdx.y, splits = gridDim.y;
  pdl_trigger();
  pdl_wait();
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int kvh = h / (n_head / n_kv_head);
  const int64_t p = tok_pos[t];
  const int64_t lo = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
  const int64_t chunk = (p - lo + 1 + splits - 1) / splits;
  const int64_t begin = lo + split * chunk, end = begin + chunk < p + 1 ? begin + chunk : p + 1;

  float qr[kPerLane];
  const __nv_bfloat16* qv = q + (t * n_head + h) * hd;
  for (int i = 0; i < kPerLane; ++i) {
    const int d = lane + i * kWarp;
    qr[i] = d < hd ? to_f32(qv[d]) : 0.0f;
  }
  float m = -INFINITY, l = 0.0f, acc[kPerLane];
  for (int i = 0; i < kPerLane; ++i) acc[i] = 0.0f;

  const int64_t row = int64_t(n_kv_head) * hd;  // between consecutive positions
  const int64_t base = int64_t(tok_slot[t]) * capacity * row + int64_t(kvh) * hd;
  for (int64_t j = begin + warp; j < end; j += kWarps) {
    const __nv_bfloat16* kj = cache_k + base + j * row;
    float dot = 0.0f;
    for (int i = 0; i < kPerLane; ++i) {
      const int d = lane + i * kWarp;
      if (d < hd) dot += qr[i] * to_f32(kj[d]);
    }
    float s = warp_reduce(dot, SumOp{}) * scale;
    if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);  // 0 on the first position (m = -inf)
    const float w = expf(s - m_new);
    l = l * corr + w;
    const __nv_bfloat16* vj = cache_v + base + j * row;
    for (int i = 0; i < kPerLane; ++i) {
      const int d = lane + i * kWarp;
      if (d < hd) acc[i] = acc[i] * corr + w * to_f32(vj[d]);
    }
    m = m_new;
  }
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
  for (int i = 0; i < kPerLane; ++i) {
    const int d = lane + i * kWarp;
    if (d < hd) sm_acc[warp][d] = acc[i];
  }
  __syncthreads();

  float M = -INFINITY;
  for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_m[w]);
  float wt[kWarps];
  float L = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    wt[w] = M == -INFINITY ? 0.0f : expf(sm_m[w] - M);  // a warp with no position has l = 0
    L += sm_l[w] * wt[w];
  }
  __nv_bfloat16* out = attn_out + (t * n_head + h) * hd;
  if (splits == 1) {  // the block saw the whole context: its merge is the answer
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
      float a = 0.0f;
      for (int w = 0; w < kWarps; ++w) a += sm_acc[w][d] * wt[w];
      out[d] = from_f32<__nv_bfloat16>(a / L);
    }
    return;
  }
  float* part = scratch + (t * n_head + h) * splits * partial_stride(hd);
  float* mine = part + split * partial_stride(hd);
  if (threadIdx.x == 0) {
    mine[0] = M;
    mine[1] = L;
  }
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float a = 0.0f;
    for (int w = 0; w < kWarps; ++w) a += sm_acc[w][d] * wt[w];
    mine[2 + d] = a;
  }
  // Publish the partial, then count arrivals; the last block of this (token, head) merges.
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned* c = counters + t * n_head + h;
    sm_last = atomicAdd(c, 1u) == unsigned(splits - 1);
    if (sm_last) *c = 0u;  // every other block has arrived: ready for the next launch
  }
  __syncthreads();
  if (!sm_last) return;
  __threadfence();
  merge_splits(part, out, splits, hd);
}

// ---- grouped fast path --------------------------------------------------------------------
// For head_dim 64/128/256 and up to 8 query heads per kv head. Block (t * n_kv_head + kvh, split)
// serves all query heads of the kv head, so each key/value row is read once for the group. A
// position's row is held by LP = HD / 8 lanes (16 bytes each, one vector load); a warp covers
// 32 / LP positions per step and the block's warps interleave over the split's range. Every lane
// group keeps its own online softmax per head; the groups merge through shared memory, and the
// splits as in the general kernel (partials + last-block merge).
constexpr int kMaxGroup = 8;

__device__ __forceinline__ void unpack8(const uint4& u, float* f) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

template <int HD, int G>
__global__ void __launch_bounds__(kWarps * kWarp)
    attention_group_kernel(const __nv_bfloat16* q, const __nv_bfloat16* cache_k, const __nv_bfloat16* cache_v,
                           const int32_t* tok_slot, const int32_t* tok_pos, float* scratch, unsigned* counters,
                           __nv_bfloat16* attn_out, int n_head, int n_kv_head, int64_t capacity, float scale,
                           int window, float softcap) {
  constexpr int LP = HD / 8, PW = kWarp / LP, NP = kWarps * PW;  // lanes per position, positions per warp
  __shared__ float sm_m[NP][G], sm_l[NP][G];
  __shared__ float sm_acc[NP][G][HD];
  __shared__ bool sm_last;
  const int64_t t = blockIdx.x / n_kv_head;
  const int kvh = int(blockIdx.x % n_kv_head), split = blockIdx.y, splits = gridDim.y;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, lg = lane / LP, li = lane % LP;
  const int group = n_head / n_kv_head;  // <= G
  pdl_trigger();
  pdl_wait();
  const int64_t p = tok_pos[t];
  const int64_t lo = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
  const int64_t chunk = (p - lo + 1 + splits - 1) / splits;
  const int64_t begin = lo + split * chunk, end = begin + chunk < p + 1 ? begin + chunk : p + 1;

  float qf[G][8], acc[G][8], m[G], l[G];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    if (h < group) unpack8(*reinterpret_cast<const uint4*>(q + (t * n_head + kvh * group + h) * HD + li * 8), qf[h]);
    else
#pragma unroll
      for (int e = 0; e < 8; ++e) qf[h][e] = 0.0f;
    m[h] = -INFINITY;
    l[h] = 0.0f;
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[h][e] = 0.0f;
  }
  const int64_t row = int64_t(n_kv_head) * HD;  // between consecutive positions
  const int64_t base = int64_t(tok_slot[t]) * capacity * row + int64_t(kvh) * HD + li * 8;
  for (int64_t j0 = begin + warp * PW; j0 < end; j0 += NP) {  // uniform over the warp
    const int64_t j = j0 + lg;
    const bool valid = j < end;
    uint4 kr = make_uint4(0, 0, 0, 0), vr = make_uint4(0, 0, 0, 0);
    if (valid) {
      kr = __ldg(reinterpret_cast<const uint4*>(cache_k + base + j * row));
      vr = __ldg(reinterpret_cast<const uint4*>(cache_v + base + j * row));
    }
    float kf[8], vf[8];
    unpack8(kr, kf);
    unpack8(vr, vf);
#pragma unroll
    for (int h = 0; h < G; ++h) {
      float dot = 0.0f;
#pragma unroll
      for (int e = 0; e < 8; ++e) dot = fmaf(qf[h][e], kf[e], dot);
#pragma unroll
      for (int off = LP / 2; off > 0; off /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, off);  // within the group
      if (!valid || h >= group) continue;
      float sc = dot * scale;
      if (softcap > 0.0f) sc = softcap * tanhf(sc / softcap);
      const float m_new = fmaxf(m[h], sc);
      const float corr = expf(m[h] - m_new);  // 0 on the group's first position (m = -inf)
      const float wt = expf(sc - m_new);
      l[h] = l[h] * corr + wt;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[h][e] = acc[h][e] * corr + wt * vf[e];
      m[h] = m_new;
    }
  }
  const int slot = warp * PW + lg;
#pragma unroll
  for (int h = 0; h < G; ++h) {
    if (li == 0) {
      sm_m[slot][h] = m[h];
      sm_l[slot][h] = l[h];
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) sm_acc[slot][h][li * 8 + e] = acc[h][e];
  }
  __syncthreads();

  // Merge the NP lane groups of every head; then the answer (one split) or this split's partial.
  for (int i = threadIdx.x; i < group * HD; i += blockDim.x) {
    const int h = i / HD, d = i % HD;
    float M = -INFINITY;
    for (int s = 0; s < NP; ++s) M = fmaxf(M, sm_m[s][h]);
    float L = 0.0f, a = 0.0f;
    for (int s = 0; s < NP; ++s) {
      const float wt = sm_m[s][h] == -INFINITY ? 0.0f : expf(sm_m[s][h] - M);  // empty group: l = 0
      L += sm_l[s][h] * wt;
      a += sm_acc[s][h][d] * wt;
    }
    const int64_t th = t * n_head + kvh * group + h;
    if (splits == 1) {
      attn_out[th * HD + d] = from_f32<__nv_bfloat16>(a / L);
    } else {
      float* mine = scratch + (th * splits + split) * partial_stride(HD);
      if (d == 0) {
        mine[0] = M;
        mine[1] = L;
      }
      mine[2 + d] = a;
    }
  }
  if (splits == 1) return;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned* c = counters + t * n_head + kvh * group;  // one counter per (token, kv head)
    sm_last = atomicAdd(c, 1u) == unsigned(splits - 1);
    if (sm_last) *c = 0u;
  }
  __syncthreads();
  if (!sm_last) return;
  __threadfence();
  const int64_t th0 = t * n_head + kvh * group;  // the group's first (token, head) record
  merge_splits(scratch + th0 * splits * partial_stride(HD), attn_out + th0 * HD, splits, HD, group);
}

void check_shape(const AttentionDecodeShape& s, const char* name) {
  BRISK_ASSERT(s.n_head > 0 && s.n_kv_head > 0 && s.n_head % s.n_kv_head == 0, name, ": ", s.n_head,
               " query heads, ", s.n_kv_head, " kv heads");
  BRISK_ASSERT(s.head_dim > 0 && s.head_dim <= kMaxHeadDim, name, ": head_dim ", s.head_dim, " (at most ",
               kMaxHeadDim, ")");
  BRISK_ASSERT(s.capacity > 0, name, ": capacity ", s.capacity);
}

}  // namespace

size_t attention_decode_scratch_bytes(int64_t n_tokens, const AttentionDecodeShape& s, int splits) {
  return size_t(n_tokens) * size_t(s.n_head) * size_t(splits) * size_t(partial_stride(s.head_dim)) * sizeof(float);
}

size_t attention_decode_counter_bytes(int64_t n_tokens, const AttentionDecodeShape& s) {
  return size_t(n_tokens) * size_t(s.n_head) * sizeof(unsigned);
}

void launch_rope_kv_append(__nv_bfloat16* q, __nv_bfloat16* k, const __nv_bfloat16* v, const float* q_norm,
                           const float* k_norm, float eps, const DecodeRope& rope, const int32_t* tok_slot,
                           const int32_t* tok_pos, __nv_bfloat16* cache_k, __nv_bfloat16* cache_v, int64_t n_tokens,
                           const AttentionDecodeShape& s, cudaStream_t stream) {
  check_shape(s, "rope_kv_append");
  BRISK_ASSERT(n_tokens >= 0 && n_tokens <= INT32_MAX, "rope_kv_append: ", n_tokens, " tokens");
  BRISK_ASSERT(rope.n_freq >= 0 && 2 * rope.n_freq <= s.head_dim && (rope.n_freq == 0 || rope.inv_freq),
               "rope_kv_append: ", rope.n_freq, " frequencies for head_dim ", s.head_dim);
  if (n_tokens == 0) return;
  launch_programmatic("rope_kv_append_kernel", rope_kv_append_kernel,
                      dim3(unsigned(n_tokens), unsigned(s.n_head + s.n_kv_head)), dim3(kRopeThreads), 0, stream, q, k,
                      v, q_norm, k_norm, eps, rope.inv_freq, rope.n_freq, rope.mscale, tok_slot, tok_pos, cache_k,
                      cache_v, s.capacity, s.n_head, s.n_kv_head, s.head_dim);
}

void launch_attention_decode(const __nv_bfloat16* q, const __nv_bfloat16* cache_k, const __nv_bfloat16* cache_v,
                             const int32_t* tok_slot, const int32_t* tok_pos, __nv_bfloat16* out, float* scratch,
                             unsigned* counters, int64_t n_tokens, const AttentionDecodeShape& s, int splits,
                             cudaStream_t stream) {
  check_shape(s, "attention_decode");
  BRISK_ASSERT(splits >= 1 && splits <= kMaxAttentionSplits, "attention_decode: ", splits, " splits");
  BRISK_ASSERT(n_tokens >= 0 && n_tokens * s.n_head <= INT32_MAX, "attention_decode: ", n_tokens, " tokens");
  BRISK_ASSERT(splits == 1 || (scratch && counters), "attention_decode: ", splits, " splits need scratch and counters");
  if (n_tokens == 0) return;
  const int group = s.n_head / s.n_kv_head;
  if ((s.head_dim == 64 || s.head_dim == 128 || s.head_dim == 256) && group <= kMaxGroup) {
    const dim3 grid(unsigned(n_tokens * s.n_kv_head), unsigned(splits));
    const auto go = [&](auto kernel) {
      launch_programmatic("attention_group_kernel", kernel, grid, dim3(kWarps * kWarp), 0, stream, q, cache_k,
                          cache_v, tok_slot, tok_pos, scratch, counters, out, s.n_head, s.n_kv_head, s.capacity,
                          s.scale, s.window, s.softcap);
    };
    const auto by_group = [&](auto hd) {
      constexpr int HD = decltype(hd)::value;
      if (group == 1) go(attention_group_kernel<HD, 1>);
      else if (group == 2) go(attention_group_kernel<HD, 2>);
      else if (group <= 4) go(attention_group_kernel<HD, 4>);
      else go(attention_group_kernel<HD, 8>);
    };
    if (s.head_dim == 64) by_group(std::integral_constant<int, 64>{});
    else if (s.head_dim == 128) by_group(std::integral_constant<int, 128>{});
    else by_group(std::integral_constant<int, 256>{});
    return;
  }
  launch_programmatic("attention_partial_kernel", attention_partial_kernel,
                      dim3(unsigned(n_tokens * s.n_head), unsigned(splits)), dim3(kWarps * kWarp), 0, stream, q,
                      cache_k, cache_v, tok_slot, tok_pos, scratch, counters, out, s.n_head, s.n_kv_head, s.head_dim,
                      s.capacity, s.scale, s.window, s.softcap);
}

}  // namespace brisk::cuda
