// Flash attention (FlashAttention-2 style) for packed variable-length segments; semantics of
// ops::attention_train_forward / attention_train_backward (backend/cpu/attention_train.cpp).
//
// Forward: one CTA (4 warps) per (segment, query head, 64-query tile); each warp owns 16 query
// rows. Q is loaded once; 64-key tiles of K and V stream through shared memory. Per key tile a
// warp computes S = Q K^T for its rows, the online softmax update (running max and sum; O is
// rescaled by exp(m_old - m_new) only when the max moved by more than a slack), and O += P V
// with P rounded to bf16. Key tiles no query of the tile can see are never visited: causal
// stops at the diagonal tile, a window starts at its first tile. Masks inside visited tiles
// are applied element by element (segment end, causal, window).
//
// Backward: D = rowsum(dO * O) first (one warp per row). Then one CTA (8 warps) per (segment,
// kv head, 64-key tile): K and V stay in shared memory, dK and dV in registers, while the CTA
// loops over the query heads of the GQA group and the query tiles that can see its keys,
// recomputing P = exp(S - lse) and dS = P * (dP - D), dP = dO V^T; dV += P^T dO, dK += dS^T Q,
// and dQ += dS K goes to an f32 accumulator with atomicAdd. A last kernel rounds dQ to bf16.
//
// Products: WMMA bf16 m16n16k16 with f32 accumulators; the Scalar twin (for the tests) runs the
// very same tiles, slices, masks and softmax lines with fp32 FMAs. WMMA's fragment layout is
// opaque, so anything done per element (masks, softmax, rescale, dS) goes through shared memory
// (f32): slower than FA2's register-level mma.sync, simple to get right. Exponentials and logs
// use full-accuracy expf / logf. FlashAttnImpl::Mma (register-level mma.sync, FA2's layout) lives
// in flash_attn_mma.cu; the launchers below dispatch to it.
#include "backend/cuda/flash_attn.h"

#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/flash_attn_common.cuh"
#include "backend/cuda/flash_attn_mma.cuh"
#include "core/error.h"

namespace brisk::cuda {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kBM = 64;            // query rows per tile
constexpr int kBN = 64;            // key rows per tile
constexpr int kFwdThreads = 128;   // 4 warps; ~111 KB of shared memory at hd 128: 2 CTAs per SM
constexpr int kBwdThreads = 256;   // 8 warps; ~121 KB at hd 128 (1 CTA per SM), ~107 KB at hd 64 (2)
static_assert(kBwdThreads / 32 == 2 * (kBN / 16), "backward: 8 warps = 4 key-row slices x 2 column halves");
constexpr int kPadH = 8;           // bf16 row padding: 16 bytes, staggers banks, keeps rows 16-byte aligned
constexpr int kPadF = 4;           // f32 row padding: 16 bytes
constexpr int kMaxGridYZ = 65535;  // CUDA's limit on gridDim.y and gridDim.z

// ---------------------------------------------------------------------------------------------
// Shared-memory tile products.
//
// The scalar twin's block-wide dK / dV update: C[M, N] (f32, row stride ldc) += A^T B with A
// stored [K, M] (A(i, k) = A[k*lda + i]) and B [K, N] row-major, all in shared memory; one
// thread per output element, no barrier inside. (The tensor-core path keeps dK, dV in warp
// registers instead.)
template <int M, int N, int K>
__device__ __forceinline__ void block_gemm_at_b_fma(const bf16* A, int lda, const bf16* B, int ldb, float* C, int ldc) {
  for (int idx = int(threadIdx.x); idx < M * N; idx += int(blockDim.x)) {
    const int i = idx / N, n = idx % N;
    float acc = C[i * ldc + n];
    for (int k = 0; k < K; ++k)
      acc = fmaf(__bfloat162float(A[k * lda + i]), __bfloat162float(B[k * ldb + n]), acc);
    C[i * ldc + n] = acc;
  }
}

// One warp's slice (WMMA needs 32-byte aligned tile pointers and ld % 8 == 0 for bf16, % 4 for
// f32: the layouts below keep every tile base a multiple of 32 bytes): C[16, kN] (f32, row stride ldc) = A[16, K] * B[K, kN], A row-major, B(k, n)
// = B[k*ldb + n] or, with kBTrans, B[n*ldb + k]. The A fragments are loaded once per k step and
// reused across the kN / 16 output tiles. No barrier inside; C is the warp's own region.
template <bool kTensorCores, bool kBTrans, int kN, int K>
__device__ __forceinline__ void warp_gemm(const bf16* A, int lda, const bf16* B, int ldb, float* C, int ldc) {
  static_assert(kN % 16 == 0 && K % 16 == 0, "warp_gemm: 16x16x16 tiles");
  if constexpr (kTensorCores) {
    namespace wmma = nvcuda::wmma;
    using BLayout = std::conditional_t<kBTrans, wmma::col_major, wmma::row_major>;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> c[kN / 16];
#pragma unroll
    for (int j = 0; j < kN / 16; ++j) wmma::fill_fragment(c[j], 0.0f);
#pragma unroll
    for (int k0 = 0; k0 < K; k0 += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> a;
      wmma::load_matrix_sync(a, A + k0, unsigned(lda));
#pragma unroll
      for (int j = 0; j < kN / 16; ++j) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, BLayout> b;
        wmma::load_matrix_sync(b, kBTrans ? B + j * 16 * ldb + k0 : B + k0 * ldb + j * 16, unsigned(ldb));
        wmma::mma_sync(c[j], a, b, c[j]);
      }
    }
#pragma unroll
    for (int j = 0; j < kN / 16; ++j) wmma::store_matrix_sync(C + j * 16, c[j], unsigned(ldc), wmma::mem_row_major);
  } else {
    const int lane = int(threadIdx.x) % kWarp;
    for (int idx = lane; idx < 16 * kN; idx += kWarp) {
      const int i = idx / kN, n = idx % kN;
      float acc = 0.0f;
      for (int k = 0; k < K; ++k)
        acc = fmaf(__bfloat162float(A[i * lda + k]), __bfloat162float(kBTrans ? B[n * ldb + k] : B[k * ldb + n]), acc);
      C[i * ldc + n] = acc;
    }
  }
}

// Copies `rows` rows of D bf16 (global row stride gstride elements, 16-byte aligned rows) into
// a shared tile of kRows rows (row stride lds). Rows past `rows` are zeroed: the tile products
// then see finite values there, and the masks drop them.
template <int D, int kRows>
__device__ __forceinline__ void load_tile(bf16* s, int lds, const bf16* g, int64_t gstride, int rows) {
  constexpr int kVecs = D / 8;  // 16-byte vectors per row
  for (int idx = int(threadIdx.x); idx < kRows * kVecs; idx += int(blockDim.x)) {
    const int r = idx / kVecs, c = (idx % kVecs) * 8;
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (r < rows) v = *reinterpret_cast<const uint4*>(g + r * gstride + c);
    *reinterpret_cast<uint4*>(s + r * lds + c) = v;
  }
}

using flash_common::key_visible;
using flash_common::Params;
using flash_common::poison_rows;

// ---------------------------------------------------------------------------------------------
// Forward. Each warp owns 16 query rows of the tile for the whole kernel: it computes their
// scores, their softmax and their rows of O, so between the block-wide K/V tile loads a warp
// only waits for itself (__syncwarp). On the tensor-core path the warp's Q fragments and O
// accumulators stay in registers across key tiles; O goes through shared memory only when a
// row's running max moved (to rescale it: WMMA's fragment layout is opaque) and at the end.
constexpr int kFwdWarps = kFwdThreads / kWarp;
constexpr float kMaxSlack = 8.0f;  // see the online softmax below
constexpr int kRowsPerWarp = 16;
static_assert(kFwdWarps * kRowsPerWarp == kBM, "forward: each warp owns one 16-row slice of the query tile");

template <int D> struct FwdLayout {
  static constexpr int kLdQKV = D + kPadH, kLdS = kBN + kPadF, kLdP = kBN + kPadH, kLdO = D + kPadF;
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + size_t(kBM) * kLdQKV * sizeof(bf16);
  static constexpr size_t kV = kK + size_t(kBN) * kLdQKV * sizeof(bf16);
  static constexpr size_t kS = kV + size_t(kBN) * kLdQKV * sizeof(bf16);
  static constexpr size_t kP = kS + size_t(kBM) * kLdS * sizeof(float);
  static constexpr size_t kO = kP + size_t(kBM) * kLdP * sizeof(bf16);
  static constexpr size_t kRowMax = kO + size_t(kBM) * kLdO * sizeof(float);
  static constexpr size_t kRowSum = kRowMax + kBM * sizeof(float);
  static constexpr size_t kRowAlpha = kRowSum + kBM * sizeof(float);
  static constexpr size_t kBytes = kRowAlpha + kBM * sizeof(float);
  static_assert(kK % 32 == 0 && kV % 32 == 0 && kS % 32 == 0 && kP % 32 == 0 && kO % 32 == 0 && kRowMax % 32 == 0,
                "WMMA tiles need 32-byte aligned bases");
};

template <int D, bool kTC>
__global__ void __launch_bounds__(kFwdThreads)
    flash_fwd_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                     const int32_t* __restrict__ cu_seqlens, Params p, bf16* __restrict__ out,
                     float* __restrict__ lse) {
  namespace wmma = nvcuda::wmma;
  using L = FwdLayout<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem + L::kQ);
  bf16* sK = reinterpret_cast<bf16*>(smem + L::kK);
  bf16* sV = reinterpret_cast<bf16*>(smem + L::kV);
  float* sS = reinterpret_cast<float*>(smem + L::kS);
  bf16* sP = reinterpret_cast<bf16*>(smem + L::kP);
  float* sO = reinterpret_cast<float*>(smem + L::kO);
  float* sMax = reinterpret_cast<float*>(smem + L::kRowMax);
  float* sSum = reinterpret_cast<float*>(smem + L::kRowSum);
  float* sAlpha = reinterpret_cast<float*>(smem + L::kRowAlpha);

  const int seg = int(blockIdx.x), h = int(blockIdx.y);
  const int n_qtiles = int(gridDim.z), qt = n_qtiles - 1 - int(blockIdx.z);  // long causal tiles start first
  const int64_t seg_begin = cu_seqlens[seg];
  const int seg_len = cu_seqlens[seg + 1] - cu_seqlens[seg];
  if (qt == n_qtiles - 1 && seg_len > n_qtiles * kBM) {
    poison_rows(out, seg_begin, n_qtiles * kBM, seg_len, p.n_heads, h, D);
    for (int r = n_qtiles * kBM + int(threadIdx.x); r < seg_len; r += int(blockDim.x))
      lse[(seg_begin + r) * p.n_heads + h] = NAN;
  }
  const int q_first = qt * kBM;
  if (q_first >= seg_len) return;
  const int q_rows = min(kBM, seg_len - q_first), last_q = q_first + q_rows - 1;
  const int kvh = h / p.group;
  const int warp = int(threadIdx.x) / kWarp, lane = int(threadIdx.x) % kWarp;
  const int r0 = warp * kRowsPerWarp;           // this warp's rows: r0 .. r0 + 15 of the tile
  const bool warp_has_rows = r0 < q_rows;       // a short last tile leaves some warps only loading

  load_tile<D, kBM>(sQ, L::kLdQKV, q + (seg_begin + q_first) * p.q_stride + h * D, p.q_stride, q_rows);
  for (int i = lane; i < kRowsPerWarp * L::kLdO; i += kWarp) sO[r0 * L::kLdO + i] = 0.0f;
  if (lane < kRowsPerWarp) {
    sMax[r0 + lane] = -INFINITY;
    sSum[r0 + lane] = 0.0f;
  }
  __syncthreads();

  // Tensor-core path: the warp's Q rows as A fragments and its O rows as accumulators, held in
  // registers for the whole kernel (indexed by unrolled loop counters only).
  wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> q_frag[D / 16];
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> o_frag[D / 16];
  if constexpr (kTC) {
#pragma unroll
    for (int j = 0; j < D / 16; ++j) {
      wmma::load_matrix_sync(q_frag[j], sQ + r0 * L::kLdQKV + j * 16, unsigned(L::kLdQKV));
      wmma::fill_fragment(o_frag[j], 0.0f);
    }
  }

  // Key tiles some query of [q_first, last_q] sees: from the window start of the first query
  // to the diagonal of the last one.
  const int k_lo = p.window > 0 ? max(0, q_first - p.window + 1) : 0;
  for (int kt = k_lo / kBN; kt <= last_q / kBN; ++kt) {
    const int k_first = kt * kBN, k_rows = min(kBN, seg_len - k_first);
    __syncthreads();  // every warp is done with the previous sK, sV
    load_tile<D, kBN>(sK, L::kLdQKV, k + (seg_begin + k_first) * p.k_stride + kvh * D, p.k_stride, k_rows);
    load_tile<D, kBN>(sV, L::kLdQKV, v + (seg_begin + k_first) * p.v_stride + kvh * D, p.v_stride, k_rows);
    __syncthreads();
    if (!warp_has_rows) continue;

    // S = Q K^T for the warp's rows.
    if constexpr (kTC) {
#pragma unroll
      for (int n0 = 0; n0 < kBN; n0 += 16) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> s_frag;
        wmma::fill_fragment(s_frag, 0.0f);
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> k_frag;
          wmma::load_matrix_sync(k_frag, sK + n0 * L::kLdQKV + j * 16, unsigned(L::kLdQKV));
          wmma::mma_sync(s_frag, q_frag[j], k_frag, s_frag);
        }
        wmma::store_matrix_sync(sS + r0 * L::kLdS + n0, s_frag, unsigned(L::kLdS), wmma::mem_row_major);
      }
    } else {
      for (int i = lane; i < kRowsPerWarp * kBN; i += kWarp) {
        const int r = r0 + i / kBN, n = i % kBN;
        float acc = 0.0f;
        for (int c = 0; c < D; ++c)
          acc = fmaf(__bfloat162float(sQ[r * L::kLdQKV + c]), __bfloat162float(sK[n * L::kLdQKV + c]), acc);
        sS[r * L::kLdS + n] = acc;
      }
    }
    __syncwarp();

    // Online softmax, row by row: running max, P = exp(s - max) (bf16 for the product, its f32
    // value into the running sum), alpha = exp(old max - new max) for the row of O and the sum.
    // A row that has seen no visible key yet keeps max -inf and P = 0. lse = max + log(sum)
    // holds whichever max was used.
    bool any_rescale = false;  // warp-uniform: every lane computes the same alphas
    for (int r = r0; r < r0 + kRowsPerWarp; ++r) {
      const int qpos = q_first + r;
      float s[kBN / kWarp];
      float tile_max = -INFINITY;
#pragma unroll
      for (int c = 0; c < kBN / kWarp; ++c) {
        const int col = lane + c * kWarp;
        s[c] = key_visible(qpos, k_first + col, seg_len, p.window) ? sS[r * L::kLdS + col] * p.scale : -INFINITY;
        tile_max = fmaxf(tile_max, s[c]);
      }
      tile_max = warp_reduce(tile_max, MaxOp{});
      // The running max moves only when the tile's max passes it by kMaxSlack (or it was -inf):
      // P = exp(s - max) <= e^8 is then harmless in f32 and bf16 (same exponent range), the sum
      // and O use the same stale max, and most tiles need no rescale of O at all.
      const float old_max = sMax[r];
      const float new_max = tile_max > old_max + kMaxSlack ? tile_max : old_max;
      float sum = 0.0f;
#pragma unroll
      for (int c = 0; c < kBN / kWarp; ++c) {
        const float e = new_max == -INFINITY ? 0.0f : expf(s[c] - new_max);
        sP[r * L::kLdP + lane + c * kWarp] = __float2bfloat16_rn(e);
        sum += e;
      }
      sum = warp_reduce(sum, SumOp{});  // also orders every lane's read of sMax[r] before lane 0's write
      // O and the sum are still zero while the max is -inf: nothing to rescale then.
      const float alpha = old_max == -INFINITY || new_max == old_max ? 1.0f : expf(old_max - new_max);
      any_rescale |= alpha != 1.0f;
      if constexpr (!kTC)
        for (int c = lane; c < D; c += kWarp) sO[r * L::kLdO + c] *= alpha;
      if (lane == 0) {
        sSum[r] = sSum[r] * alpha + sum;
        sMax[r] = new_max;
        sAlpha[r] = alpha;
      }
    }
    __syncwarp();

    // O = alpha * O + P V for the warp's rows.
    if constexpr (kTC) {
      if (any_rescale) {  // through shared memory: the fragment's row of each element is opaque
#pragma unroll
        for (int j = 0; j < D / 16; ++j)
          wmma::store_matrix_sync(sO + r0 * L::kLdO + j * 16, o_frag[j], unsigned(L::kLdO), wmma::mem_row_major);
        __syncwarp();
        for (int i = lane; i < kRowsPerWarp * D; i += kWarp) {
          const int r = r0 + i / D, c = i % D;
          sO[r * L::kLdO + c] *= sAlpha[r];
        }
        __syncwarp();
#pragma unroll
        for (int j = 0; j < D / 16; ++j)
          wmma::load_matrix_sync(o_frag[j], sO + r0 * L::kLdO + j * 16, unsigned(L::kLdO), wmma::mem_row_major);
      }
#pragma unroll
      for (int k0 = 0; k0 < kBN; k0 += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> p_frag;
        wmma::load_matrix_sync(p_frag, sP + r0 * L::kLdP + k0, unsigned(L::kLdP));
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> v_frag;
          wmma::load_matrix_sync(v_frag, sV + k0 * L::kLdQKV + j * 16, unsigned(L::kLdQKV));
          wmma::mma_sync(o_frag[j], p_frag, v_frag, o_frag[j]);
        }
      }
    } else {
      for (int i = lane; i < kRowsPerWarp * D; i += kWarp) {
        const int r = r0 + i / D, c = i % D;
        float acc = sO[r * L::kLdO + c];
        for (int n = 0; n < kBN; ++n)
          acc = fmaf(__bfloat162float(sP[r * L::kLdP + n]), __bfloat162float(sV[n * L::kLdQKV + c]), acc);
        sO[r * L::kLdO + c] = acc;
      }
    }
  }
  if (!warp_has_rows) return;  // no barrier follows: the rest is the warp's own rows
  if constexpr (kTC) {
#pragma unroll
    for (int j = 0; j < D / 16; ++j)
      wmma::store_matrix_sync(sO + r0 * L::kLdO + j * 16, o_frag[j], unsigned(L::kLdO), wmma::mem_row_major);
  }
  __syncwarp();

  // Every real query row saw at least its own key, so its sum is > 0.
  const int warp_rows = min(kRowsPerWarp, q_rows - r0);
  for (int i = lane; i < warp_rows * D; i += kWarp) {
    const int r = r0 + i / D, c = i % D;
    out[((seg_begin + q_first + r) * p.n_heads + h) * D + c] = __float2bfloat16_rn(sO[r * L::kLdO + c] / sSum[r]);
  }
  if (lane < warp_rows)
    lse[(seg_begin + q_first + r0 + lane) * p.n_heads + h] = sMax[r0 + lane] + logf(sSum[r0 + lane]);
}

// ---------------------------------------------------------------------------------------------
// Backward.

// delta[row] = sum_c dout[row, c] * out[row, c] over rows of hd elements (row = token * nh + head).
__global__ void flash_bwd_delta_kernel(const bf16* __restrict__ out, const bf16* __restrict__ dout,
                                       float* __restrict__ delta, int64_t rows, int hd) {
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  const int lane = int(threadIdx.x) % kWarp;
  if (row >= rows) return;  // the whole warp leaves together
  float acc = 0.0f;
  for (int c = lane; c < hd; c += kWarp) acc += __bfloat162float(out[row * hd + c]) * __bfloat162float(dout[row * hd + c]);
  acc = warp_reduce(acc, SumOp{});
  if (lane == 0) delta[row] = acc;
}

__global__ void flash_bwd_dq_convert_kernel(const float* __restrict__ dq_acc, bf16* __restrict__ dq, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dq[i] = __float2bfloat16_rn(dq_acc[i]);
}

// Shared memory of the backward CTA. The scalar twin accumulates dK and dV in shared memory
// (their own f32 tiles); the tensor-core path keeps them in registers and stages them for the
// final store over Q, dO, S, dP (dead by then): ~107 KB at hd 64 (2 CTAs per SM, where the
// scalar twin's ~141 KB fits one), ~121 KB at hd 128 (1 CTA per SM), ~73 KB at hd 32, ~65 KB at
// hd 16.
template <int D, bool kTC> struct BwdLayout {
  static constexpr int kLdH = D + kPadH;   // bf16 K, V, Q, dO tiles
  static constexpr int kLdF = D + kPadF;   // f32 dK, dV, dQ tiles
  static constexpr int kLdS = kBN + kPadF; // f32 S, dP [kBM][kBN]
  static constexpr int kLdP = kBN + kPadH; // bf16 P, dS [kBM][kBN]
  static constexpr size_t kAccBytes = size_t(kBN) * kLdF * sizeof(float);  // one of dK, dV
  static constexpr size_t kK = 0;
  static constexpr size_t kV = kK + size_t(kBN) * kLdH * sizeof(bf16);
  static constexpr size_t kScalarAcc = kV + size_t(kBN) * kLdH * sizeof(bf16);  // scalar twin: dK, dV
  static constexpr size_t kQ = kScalarAcc + (kTC ? 0 : 2 * kAccBytes);
  static constexpr size_t kdO = kQ + size_t(kBM) * kLdH * sizeof(bf16);
  static constexpr size_t kS = kdO + size_t(kBM) * kLdH * sizeof(bf16);
  static constexpr size_t kdP = kS + size_t(kBM) * kLdS * sizeof(float);
  static constexpr size_t kP = kdP + size_t(kBM) * kLdS * sizeof(float);
  static constexpr size_t kdS = kP + size_t(kBM) * kLdP * sizeof(bf16);
  static constexpr size_t kLse = kdS + size_t(kBM) * kLdP * sizeof(bf16);
  static constexpr size_t kDelta = kLse + kBM * sizeof(float);
  static constexpr size_t kBytes = kDelta + kBM * sizeof(float);
  static constexpr size_t kdK = kTC ? kQ : kScalarAcc;  // tensor cores: staging over Q, dO, S, dP
  static constexpr size_t kdV = kdK + kAccBytes;
  static_assert(!kTC || kdV + kAccBytes <= kP, "dK, dV staging must fit over Q, dO, S and dP");
  // dS K lands on S and dP, dead once P and dS are formed.
  static constexpr size_t kdQ = kS;
  static_assert(size_t(kBM) * kLdF * sizeof(float) <= kP - kS, "dQ tile must fit over S and dP");
  static_assert(kV % 32 == 0 && kQ % 32 == 0 && kdO % 32 == 0 && kdK % 32 == 0 && kdV % 32 == 0 && kS % 32 == 0 &&
                    kdP % 32 == 0 && kP % 32 == 0 && kdS % 32 == 0,
                "WMMA tiles need 32-byte aligned bases");
};

template <int D, bool kTC>
__global__ void __launch_bounds__(kBwdThreads)
    flash_bwd_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                     const bf16* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta,
                     const int32_t* __restrict__ cu_seqlens, Params p, float* __restrict__ dq_acc,
                     bf16* __restrict__ dk, bf16* __restrict__ dv) {
  using L = BwdLayout<D, kTC>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sK = reinterpret_cast<bf16*>(smem + L::kK);
  bf16* sV = reinterpret_cast<bf16*>(smem + L::kV);
  bf16* sQ = reinterpret_cast<bf16*>(smem + L::kQ);
  bf16* sdO = reinterpret_cast<bf16*>(smem + L::kdO);
  float* sdK = reinterpret_cast<float*>(smem + L::kdK);
  float* sdV = reinterpret_cast<float*>(smem + L::kdV);
  float* sS = reinterpret_cast<float*>(smem + L::kS);
  float* sdP = reinterpret_cast<float*>(smem + L::kdP);
  bf16* sP = reinterpret_cast<bf16*>(smem + L::kP);
  bf16* sdS = reinterpret_cast<bf16*>(smem + L::kdS);
  float* sdQ = reinterpret_cast<float*>(smem + L::kdQ);
  float* sLse = reinterpret_cast<float*>(smem + L::kLse);
  float* sDelta = reinterpret_cast<float*>(smem + L::kDelta);

  const int seg = int(blockIdx.x), g = int(blockIdx.y), kt = int(blockIdx.z), n_ktiles = int(gridDim.z);
  const int64_t seg_begin = cu_seqlens[seg];
  const int seg_len = cu_seqlens[seg + 1] - cu_seqlens[seg];
  if (kt == n_ktiles - 1 && seg_len > n_ktiles * kBN) {  // max_seqlen too small: see poison_rows
    poison_rows(dk, seg_begin, n_ktiles * kBN, seg_len, p.n_kv_heads, g, D);
    poison_rows(dv, seg_begin, n_ktiles * kBN, seg_len, p.n_kv_heads, g, D);
    for (int64_t i = threadIdx.x; i < int64_t(seg_len - n_ktiles * kBN) * D * p.group; i += blockDim.x) {
      const int64_t r = i / (int64_t(D) * p.group), rest = i % (int64_t(D) * p.group);
      const int h = g * p.group + int(rest / D);
      dq_acc[((seg_begin + n_ktiles * kBN + r) * p.n_heads + h) * D + rest % D] = NAN;
    }
  }
  const int k_first = kt * kBN;
  if (k_first >= seg_len) return;
  const int k_rows = min(kBN, seg_len - k_first), last_k = k_first + k_rows - 1;

  load_tile<D, kBN>(sK, L::kLdH, k + (seg_begin + k_first) * p.k_stride + g * D, p.k_stride, k_rows);
  load_tile<D, kBN>(sV, L::kLdH, v + (seg_begin + k_first) * p.v_stride + g * D, p.v_stride, k_rows);
  if constexpr (!kTC)
    for (int i = int(threadIdx.x); i < kBN * L::kLdF; i += int(blockDim.x)) {
      sdK[i] = 0.0f;
      sdV[i] = 0.0f;
    }
  // Tensor-core path: dK and dV accumulate in registers over every query tile and head of the
  // group (no rescale in the backward, so they never leave registers before the end). Warp w
  // owns key rows kr0 .. kr0 + 15 and columns c0 .. c0 + D/2 - 1 of both; dQ likewise splits
  // into (query rows qr0.., columns c0..) slices. At hd 16 half a row (8 columns) is narrower
  // than a WMMA tile, so the second index picks an operand instead of a column half: warps 0-3
  // own all 16 columns of dV, warps 4-7 all 16 of dK, and only warps 0-3 compute dQ (c0 = 0).
  namespace wmma = nvcuda::wmma;
  constexpr bool kNarrow = D < 32;
  constexpr int kCols = kNarrow ? D : D / 2;  // columns of a warp's dK / dV / dQ slice
  const int warp = int(threadIdx.x) / kWarp;
  const int lane = int(threadIdx.x) % kWarp;
  const int half = warp / (kBN / 16);  // 0: warps 0-3, 1: warps 4-7
  const int kr0 = (warp % (kBN / 16)) * 16, c0 = kNarrow ? 0 : half * kCols;
  const int qr0 = (warp % (kBM / 16)) * 16, kc0 = (warp / (kBM / 16)) * (kBN / 2);  // S, dP, dQ slices
  const bool owns_dv = !kNarrow || half == 0, owns_dk = !kNarrow || half == 1, owns_dq = !kNarrow || half == 0;
  constexpr int kAccTiles = kCols / 16;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> dk_frag[kAccTiles], dv_frag[kAccTiles];
  if constexpr (kTC) {
#pragma unroll
    for (int j = 0; j < kAccTiles; ++j) {
      wmma::fill_fragment(dk_frag[j], 0.0f);
      wmma::fill_fragment(dv_frag[j], 0.0f);
    }
  }

  // Query tiles holding a query that sees a key of [k_first, last_k]: from the diagonal to the
  // end of the segment, or to the last query inside the window of the last key.
  const int q_end = p.window > 0 ? min(seg_len, last_k + p.window) : seg_len;
  const int64_t dout_stride = int64_t(p.n_heads) * D;
  for (int h = g * p.group; h < (g + 1) * p.group; ++h) {
    for (int qt = k_first / kBM; qt <= (q_end - 1) / kBM; ++qt) {
      const int q_first = qt * kBM, q_rows = min(kBM, seg_len - q_first);
      const int64_t row0 = seg_begin + q_first;
      __syncthreads();  // the previous step is done with sQ, sdO, sP, sdS and sdQ
      load_tile<D, kBM>(sQ, L::kLdH, q + row0 * p.q_stride + h * D, p.q_stride, q_rows);
      load_tile<D, kBM>(sdO, L::kLdH, dout + row0 * dout_stride + h * D, dout_stride, q_rows);
      for (int r = int(threadIdx.x); r < kBM; r += int(blockDim.x)) {
        sLse[r] = r < q_rows ? lse[(row0 + r) * p.n_heads + h] : 0.0f;
        sDelta[r] = r < q_rows ? delta[(row0 + r) * p.n_heads + h] : 0.0f;
      }
      __syncthreads();
      // Warp w's slice of S = Q K^T and dP = dO V^T (query rows qr0.., key columns kc0..), then
      // P and dS on that slice: only the warp's own rows and columns, so only __syncwarp.
      warp_gemm<kTC, true, kBN / 2, D>(sQ + qr0 * L::kLdH, L::kLdH, sK + kc0 * L::kLdH, L::kLdH,
                                       sS + qr0 * L::kLdS + kc0, L::kLdS);
      warp_gemm<kTC, true, kBN / 2, D>(sdO + qr0 * L::kLdH, L::kLdH, sV + kc0 * L::kLdH, L::kLdH,
                                       sdP + qr0 * L::kLdS + kc0, L::kLdS);
      __syncwarp();
      for (int i = lane; i < 16 * (kBN / 2); i += kWarp) {
        const int r = qr0 + i / (kBN / 2), c = kc0 + i % (kBN / 2);
        const bool vis = key_visible(q_first + r, k_first + c, seg_len, p.window);
        const float prob = vis ? expf(sS[r * L::kLdS + c] * p.scale - sLse[r]) : 0.0f;
        const float ds = prob * (sdP[r * L::kLdS + c] - sDelta[r]);
        sP[r * L::kLdP + c] = __float2bfloat16_rn(prob);
        sdS[r * L::kLdP + c] = __float2bfloat16_rn(ds);
      }
      __syncthreads();  // dV, dK and dQ below read every warp's P and dS
      if constexpr (kTC) {  // dV += P^T dO, dK += dS^T Q into the warp's register accumulators
#pragma unroll
        for (int k0 = 0; k0 < kBM; k0 += 16) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> pt_frag, dst_frag;
          wmma::load_matrix_sync(pt_frag, sP + k0 * L::kLdP + kr0, unsigned(L::kLdP));
          wmma::load_matrix_sync(dst_frag, sdS + k0 * L::kLdP + kr0, unsigned(L::kLdP));
#pragma unroll
          for (int j = 0; j < kAccTiles; ++j) {  // owns_*: warp-uniform, as WMMA needs
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> b_frag;
            if (owns_dv) {
              wmma::load_matrix_sync(b_frag, sdO + k0 * L::kLdH + c0 + j * 16, unsigned(L::kLdH));
              wmma::mma_sync(dv_frag[j], pt_frag, b_frag, dv_frag[j]);
            }
            if (owns_dk) {
              wmma::load_matrix_sync(b_frag, sQ + k0 * L::kLdH + c0 + j * 16, unsigned(L::kLdH));
              wmma::mma_sync(dk_frag[j], dst_frag, b_frag, dk_frag[j]);
            }
          }
        }
      } else {
        block_gemm_at_b_fma<kBN, D, kBM>(sP, L::kLdP, sdO, L::kLdH, sdV, L::kLdF);   // dV += P^T dO
        block_gemm_at_b_fma<kBN, D, kBM>(sdS, L::kLdP, sQ, L::kLdH, sdK, L::kLdF);   // dK += dS^T Q
      }
      // dQ rows qr0.., columns c0 .. c0 + kCols - 1 = dS K for the warp's slice, staged over the
      // dead S / dP, then added to the f32 accumulator.
      if (owns_dq) {
        warp_gemm<kTC, false, kCols, kBN>(sdS + qr0 * L::kLdP, L::kLdP, sK + c0, L::kLdH, sdQ + qr0 * L::kLdF + c0,
                                          L::kLdF);
        __syncwarp();
        for (int i = lane; i < 16 * kCols; i += kWarp) {
          const int r = qr0 + i / kCols, c = c0 + i % kCols;
          if (r < q_rows) atomicAdd(dq_acc + ((row0 + r) * p.n_heads + h) * D + c, p.scale * sdQ[r * L::kLdF + c]);
        }
      }
    }
  }
  if constexpr (kTC) {
    __syncthreads();  // the staging area (Q, dO, S, dP) is dead for every warp
#pragma unroll
    for (int j = 0; j < kAccTiles; ++j) {
      if (owns_dk)
        wmma::store_matrix_sync(sdK + kr0 * L::kLdF + c0 + j * 16, dk_frag[j], unsigned(L::kLdF), wmma::mem_row_major);
      if (owns_dv)
        wmma::store_matrix_sync(sdV + kr0 * L::kLdF + c0 + j * 16, dv_frag[j], unsigned(L::kLdF), wmma::mem_row_major);
    }
  }
  __syncthreads();
  for (int i = int(threadIdx.x); i < k_rows * D; i += int(blockDim.x)) {
    const int r = i / D, c = i % D;
    const int64_t o = ((seg_begin + k_first + r) * p.n_kv_heads + g) * D + c;
    dk[o] = __float2bfloat16_rn(p.scale * sdK[r * L::kLdF + c]);
    dv[o] = __float2bfloat16_rn(sdV[r * L::kLdF + c]);
  }
}

// ---------------------------------------------------------------------------------------------
// Host side.

int64_t q_stride_of(const FlashAttnShape& s) { return s.q_stride ? s.q_stride : int64_t(s.n_heads) * s.head_dim; }
int64_t k_stride_of(const FlashAttnShape& s) { return s.k_stride ? s.k_stride : int64_t(s.n_kv_heads) * s.head_dim; }
int64_t v_stride_of(const FlashAttnShape& s) { return s.v_stride ? s.v_stride : int64_t(s.n_kv_heads) * s.head_dim; }

Params params_of(const FlashAttnShape& s) {
  return Params{s.n_heads, s.n_kv_heads, s.n_heads / s.n_kv_heads, s.window,
                q_stride_of(s), k_stride_of(s), v_stride_of(s), s.scale};
}

FlashAttnShape with_resolved_strides(FlashAttnShape s) {
  s.q_stride = q_stride_of(s);
  s.k_stride = k_stride_of(s);
  s.v_stride = v_stride_of(s);
  return s;
}

int tiles_of(int len, int tile) { return (len + tile - 1) / tile; }
size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

void check_aligned(const void* ptr, const char* what) {
  BRISK_CHECK(reinterpret_cast<uintptr_t>(ptr) % 16 == 0, "flash attention: ", what,
              " is not 16-byte aligned (rows are read as 16-byte vectors)");
}

template <int D, bool kTC>
void run_forward(const bf16* q, const bf16* k, const bf16* v, const int32_t* cu, const FlashAttnShape& s, bf16* out,
                 float* lse, cudaStream_t stream) {
  constexpr size_t smem = FwdLayout<D>::kBytes;
  BRISK_CUDA_CHECK(cudaFuncSetAttribute(flash_fwd_kernel<D, kTC>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid(unsigned(s.n_seg), unsigned(s.n_heads), unsigned(tiles_of(s.max_seqlen, kBM)));
  flash_fwd_kernel<D, kTC><<<grid, kFwdThreads, smem, stream>>>(q, k, v, cu, params_of(s), out, lse);
  check_launch(kTC ? "flash_fwd_kernel" : "flash_fwd_kernel (scalar)");
}

template <int D, bool kTC>
void run_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* lse, const float* delta,
                  const int32_t* cu, const FlashAttnShape& s, float* dq_acc, bf16* dk, bf16* dv, cudaStream_t stream) {
  constexpr size_t smem = BwdLayout<D, kTC>::kBytes;
  BRISK_CUDA_CHECK(cudaFuncSetAttribute(flash_bwd_kernel<D, kTC>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid(unsigned(s.n_seg), unsigned(s.n_kv_heads), unsigned(tiles_of(s.max_seqlen, kBN)));
  flash_bwd_kernel<D, kTC><<<grid, kBwdThreads, smem, stream>>>(q, k, v, dout, lse, delta, cu, params_of(s), dq_acc, dk, dv);
  check_launch(kTC ? "flash_bwd_kernel" : "flash_bwd_kernel (scalar)");
}

template <typename Fn> void dispatch_head_dim(int head_dim, const Fn& fn) {
  switch (head_dim) {
    case 16: fn(std::integral_constant<int, 16>{}); break;
    case 32: fn(std::integral_constant<int, 32>{}); break;
    case 64: fn(std::integral_constant<int, 64>{}); break;
    case 128: fn(std::integral_constant<int, 128>{}); break;
    default: BRISK_ASSERT(false, "flash attention: head_dim ", head_dim, " passed the shape check");
  }
}

}  // namespace

void check_flash_attn_shape(const FlashAttnShape& s) {
  BRISK_CHECK(s.head_dim == 16 || s.head_dim == 32 || s.head_dim == 64 || s.head_dim == 128,
              "flash attention: head_dim ", s.head_dim, " is not supported (16, 32, 64 or 128)");
  BRISK_CHECK(s.n_heads > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0, "flash attention: ", s.n_heads,
              " query heads are not a multiple of ", s.n_kv_heads, " kv heads");
  BRISK_CHECK(s.n_heads <= kMaxGridYZ, "flash attention: ", s.n_heads, " heads (at most ", kMaxGridYZ, ")");
  BRISK_CHECK(s.tokens >= 0 && s.n_seg >= 0 && s.max_seqlen >= 0, "flash attention: negative size (tokens ", s.tokens,
              ", segments ", s.n_seg, ", max_seqlen ", s.max_seqlen, ")");
  BRISK_CHECK(s.tokens == 0 || (s.n_seg > 0 && s.max_seqlen > 0), "flash attention: ", s.tokens, " tokens in ",
              s.n_seg, " segments of at most ", s.max_seqlen);
  BRISK_CHECK(tiles_of(s.max_seqlen, kBM) <= kMaxGridYZ, "flash attention: max_seqlen ", s.max_seqlen,
              " is longer than the grid holds (", int64_t(kMaxGridYZ) * kBM, ")");
  BRISK_CHECK(std::isfinite(s.scale), "flash attention: scale ", s.scale, " is not finite");
  const struct {
    const char* name;
    int64_t stride, min;
  } strides[] = {{"q", q_stride_of(s), int64_t(s.n_heads) * s.head_dim},
                 {"k", k_stride_of(s), int64_t(s.n_kv_heads) * s.head_dim},
                 {"v", v_stride_of(s), int64_t(s.n_kv_heads) * s.head_dim}};
  for (const auto& st : strides)
    BRISK_CHECK(st.stride >= st.min && st.stride % 8 == 0, "flash attention: ", st.name, " row stride ", st.stride,
                " (needs >= heads * head_dim = ", st.min, " and a multiple of 8)");
}

void launch_flash_attn_forward(const bf16* q, const bf16* k, const bf16* v, const int32_t* cu_seqlens,
                               const FlashAttnShape& s, bf16* out, float* lse, cudaStream_t stream,
                               FlashAttnImpl impl) {
  check_flash_attn_shape(s);
  if (s.tokens == 0) return;
  for (auto [ptr, name] : {std::pair<const void*, const char*>{q, "q"}, {k, "k"}, {v, "v"}, {out, "out"}})
    check_aligned(ptr, name);
  if (impl == FlashAttnImpl::Mma) {
    flash_mma::run_forward(q, k, v, cu_seqlens, with_resolved_strides(s), out, lse, stream);
    return;
  }
  dispatch_head_dim(s.head_dim, [&](auto d) {
    constexpr int D = decltype(d)::value;
    if (impl == FlashAttnImpl::TensorCores)
      run_forward<D, true>(q, k, v, cu_seqlens, s, out, lse, stream);
    else
      run_forward<D, false>(q, k, v, cu_seqlens, s, out, lse, stream);
  });
}

void launch_flash_attn_prefix_forward(const bf16* q, const bf16* k, const bf16* v, const int32_t* cu_seqlens,
                                      const int32_t* kv_start, const int32_t* kv_len, const FlashAttnShape& s,
                                      bf16* out, float* lse, cudaStream_t stream) {
  check_flash_attn_shape(s);
  BRISK_ASSERT(kv_start != nullptr && kv_len != nullptr, "flash prefix forward: kv_start and kv_len are required");
  if (s.tokens == 0) return;
  for (auto [ptr, name] : {std::pair<const void*, const char*>{q, "q"}, {k, "k"}, {v, "v"}, {out, "out"}})
    check_aligned(ptr, name);
  flash_mma::run_forward(q, k, v, cu_seqlens, with_resolved_strides(s), out, lse, stream, kv_start, kv_len);
}

size_t flash_attn_backward_scratch_bytes(const FlashAttnShape& s) {
  const size_t rows = size_t(s.tokens) * size_t(s.n_heads);
  return align_up(rows * sizeof(float), 256) + rows * size_t(s.head_dim) * sizeof(float);
}

void launch_flash_attn_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* out, const float* lse,
                                const bf16* dout, const int32_t* cu_seqlens, const FlashAttnShape& s, bf16* dq,
                                bf16* dk, bf16* dv, void* scratch, cudaStream_t stream, FlashAttnImpl impl) {
  check_flash_attn_shape(s);
  if (s.tokens == 0) return;
  for (auto [ptr, name] : {std::pair<const void*, const char*>{q, "q"}, {k, "k"}, {v, "v"}, {dout, "dout"}})
    check_aligned(ptr, name);
  BRISK_ASSERT(scratch != nullptr && reinterpret_cast<uintptr_t>(scratch) % 256 == 0,
               "flash attention backward: scratch must be 256-byte aligned");
  const int64_t rows = s.tokens * s.n_heads, n_dq = rows * s.head_dim;
  float* delta = static_cast<float*>(scratch);
  float* dq_acc = reinterpret_cast<float*>(static_cast<char*>(scratch) + align_up(size_t(rows) * sizeof(float), 256));

  constexpr int kDeltaThreads = 256;
  const int64_t delta_blocks = (rows + kDeltaThreads / kWarp - 1) / (kDeltaThreads / kWarp);
  flash_bwd_delta_kernel<<<unsigned(delta_blocks), kDeltaThreads, 0, stream>>>(out, dout, delta, rows, s.head_dim);
  check_launch("flash_bwd_delta_kernel");
  BRISK_CUDA_CHECK(cudaMemsetAsync(dq_acc, 0, size_t(n_dq) * sizeof(float), stream));

  if (impl == FlashAttnImpl::Mma && flash_mma::backward_implemented(s)) {
    flash_mma::run_backward(q, k, v, dout, lse, delta, cu_seqlens, with_resolved_strides(s), dq_acc, dk, dv, stream);
  } else {
    dispatch_head_dim(s.head_dim, [&](auto d) {
      constexpr int D = decltype(d)::value;
      if (impl == FlashAttnImpl::Scalar)
        run_backward<D, false>(q, k, v, dout, lse, delta, cu_seqlens, s, dq_acc, dk, dv, stream);
      else  // TensorCores, and Mma where it has no backward kernel
        run_backward<D, true>(q, k, v, dout, lse, delta, cu_seqlens, s, dq_acc, dk, dv, stream);
    });
  }

  const int64_t convert_blocks = std::min<int64_t>((n_dq + 255) / 256, int64_t(1) << 20);
  flash_bwd_dq_convert_kernel<<<unsigned(convert_blocks), 256, 0, stream>>>(dq_acc, dq, n_dq);
  check_launch("flash_bwd_dq_convert_kernel");
}

}  // namespace brisk::cuda
