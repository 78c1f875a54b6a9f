// Decode attention over the bf16 KV cache (flash-decoding). Pass 1: one block of kWarps warps per
// (token, head, split); each warp walks every kWarps-th position of the split with an online
// softmax (running max m, running sum l, running weighted sum acc), the lanes of a warp sharing
// the head dimension (lane owns dims lane, lane + 32, ...); the warps then merge into the block's
// partial (m, l, acc[hd]) in f32 scratch. Pass 2 merges the splits of each (token, head):
//   M = max m_s,  out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
// An empty split (short context) writes m = -inf, l = 0, which pass 2 weighs as zero; every
// query sees at least its own position, so M is finite.
#include <algorithm>
#include <cmath>

#include "backend/cuda/attention_decode.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 256;
constexpr int kPerLane = kMaxHeadDim / kWarp;  // head dims one lane holds

// Partial record of one (token, head, split): m, l, then acc[hd].
__host__ __device__ inline int64_t partial_stride(int hd) { return int64_t(hd) + 2; }

__global__ void kv_append_kernel(const __nv_bfloat16* k, const __nv_bfloat16* v, const int32_t* tok_slot,
                                 const int32_t* tok_pos, __nv_bfloat16* cache_k, __nv_bfloat16* cache_v,
                                 int64_t capacity, int row) {
  const int64_t t = blockIdx.x;
  const int64_t dst = (int64_t(tok_slot[t]) * capacity + tok_pos[t]) * row;
  for (int e = threadIdx.x; e < row; e += blockDim.x) {
    cache_k[dst + e] = k[t * row + e];
    cache_v[dst + e] = v[t * row + e];
  }
}

__global__ void __launch_bounds__(kWarps * kWarp)
    attention_partial_kernel(const __nv_bfloat16* q, const __nv_bfloat16* cache_k, const __nv_bfloat16* cache_v,
                             const int32_t* tok_slot, const int32_t* tok_pos, float* scratch, int n_head,
                             int n_kv_head, int hd, int64_t capacity, float scale, int window, float softcap) {
  __shared__ float sm_m[kWarps], sm_l[kWarps];
  __shared__ float sm_acc[kWarps][kMaxHeadDim];
  const int64_t t = blockIdx.x / n_head;
  const int h = int(blockIdx.x % n_head), split = blockIdx.y, splits = gridDim.y;
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
  float* out = scratch + ((t * n_head + h) * splits + split) * partial_stride(hd);
  float wt[kWarps];
  float L = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    wt[w] = M == -INFINITY ? 0.0f : expf(sm_m[w] - M);  // a warp with no position has l = 0
    L += sm_l[w] * wt[w];
  }
  if (threadIdx.x == 0) {
    out[0] = M;
    out[1] = L;
  }
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float a = 0.0f;
    for (int w = 0; w < kWarps; ++w) a += sm_acc[w][d] * wt[w];
    out[2 + d] = a;
  }
}

__global__ void attention_combine_kernel(const float* scratch, __nv_bfloat16* out, int splits, int hd) {
  const int64_t th = blockIdx.x;  // token * n_head + head
  const float* part = scratch + th * splits * partial_stride(hd);
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s) M = fmaxf(M, part[s * partial_stride(hd)]);
  float L = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float* ps = part + s * partial_stride(hd);
    if (ps[0] != -INFINITY) L += ps[1] * expf(ps[0] - M);
  }
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float a = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float* ps = part + s * partial_stride(hd);
      if (ps[0] != -INFINITY) a += ps[2 + d] * expf(ps[0] - M);
    }
    out[th * hd + d] = from_f32<__nv_bfloat16>(a / L);
  }
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

void launch_kv_append(const __nv_bfloat16* k, const __nv_bfloat16* v, const int32_t* tok_slot,
                      const int32_t* tok_pos, __nv_bfloat16* cache_k, __nv_bfloat16* cache_v, int64_t n_tokens,
                      const AttentionDecodeShape& s, cudaStream_t stream) {
  check_shape(s, "kv_append");
  BRISK_ASSERT(n_tokens >= 0 && n_tokens <= INT32_MAX, "kv_append: ", n_tokens, " tokens");
  if (n_tokens == 0) return;
  kv_append_kernel<<<unsigned(n_tokens), 128, 0, stream>>>(k, v, tok_slot, tok_pos, cache_k, cache_v, s.capacity,
                                                           s.n_kv_head * s.head_dim);
  check_launch("kv_append_kernel");
}

void launch_attention_decode(const __nv_bfloat16* q, const __nv_bfloat16* cache_k, const __nv_bfloat16* cache_v,
                             const int32_t* tok_slot, const int32_t* tok_pos, __nv_bfloat16* out, float* scratch,
                             int64_t n_tokens, const AttentionDecodeShape& s, int splits, cudaStream_t stream) {
  check_shape(s, "attention_decode");
  BRISK_ASSERT(splits >= 1 && splits <= kMaxAttentionSplits, "attention_decode: ", splits, " splits");
  BRISK_ASSERT(n_tokens >= 0 && n_tokens * s.n_head <= INT32_MAX, "attention_decode: ", n_tokens, " tokens");
  if (n_tokens == 0) return;
  const dim3 grid(unsigned(n_tokens * s.n_head), unsigned(splits));
  attention_partial_kernel<<<grid, kWarps * kWarp, 0, stream>>>(q, cache_k, cache_v, tok_slot, tok_pos, scratch,
                                                                s.n_head, s.n_kv_head, s.head_dim, s.capacity,
                                                                s.scale, s.window, s.softcap);
  check_launch("attention_partial_kernel");
  const int threads = std::min(256, (s.head_dim + kWarp - 1) / kWarp * kWarp);
  attention_combine_kernel<<<unsigned(n_tokens * s.n_head), threads, 0, stream>>>(scratch, out, splits,
                                                                                  s.head_dim);
  check_launch("attention_combine_kernel");
}

}  // namespace brisk::cuda
