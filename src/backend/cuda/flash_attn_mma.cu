// FlashAttnImpl::Mma: flash attention with register-level tensor-core products (FA2 layout).
// Same semantics as the kernels in flash_attn.cu (masks, packed varlen segments, GQA, window,
// strided q/k/v, lse in natural log); this file only changes where the intermediates live.
//
// Forward: one CTA (8 warps) per (segment, query head, 128-query tile); warp w owns query rows
// 16w .. 16w+15. Q stays in shared memory (re-read with ldmatrix each key tile: holding it in
// registers too would spill O at hd 128). K and V 64-row tiles are double-buffered: cp.async
// fetches tile j+1 while tile j is multiplied. Per key tile, each warp computes S = Q K^T into
// mma accumulators, applies the masks (only on tiles that need them), does the online softmax
// on those registers, converts P to bf16 A fragments in registers (the C layout of two adjacent
// n8 tiles is exactly the A layout of one k16 step) and accumulates O += P V in registers.
// Backward (FA2 layout, one CTA per kv head and 64-key tile): see the section further down.
//
// head_dim 16 .. 128. At hd 16 every loop over D is one step: S = Q K^T is one k16 step (the
// .x4 A load covers columns 0..15 of Q), O is two n8 tiles (one .x4 .trans V load), a row is two
// 16-byte cp.async chunks. Only the backward's phase 2 differs: a warp's half of D is 8 columns,
// one n8 tile, loaded with ldmatrix .x2 .trans instead of a pair of tiles per .x4 (see there).
//
// ---------------------------------------------------------------------------------------------
// Fragment layouts of mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (PTX ISA, "Matrix
// fragments for mma.m16n8k16"). lane = 4 g + t, g = lane / 4 in 0..7, t = lane % 4 in 0..3.
// A 32-bit register holds two bf16, the lower-indexed element in the low half.
//   A (16 x 16, row-major): a0 = A[g][2t, 2t+1]     a1 = A[g+8][2t, 2t+1]
//                           a2 = A[g][2t+8, 2t+9]   a3 = A[g+8][2t+8, 2t+9]
//   B (16 x 8, "col"):      b0 = B[2t, 2t+1][g]     b1 = B[2t+8, 2t+9][g]
//   C (16 x 8, f32):        c0, c1 = C[g][2t, 2t+1] c2, c3 = C[g+8][2t, 2t+1]
// ldmatrix.m8n8.x4.b16: lanes 8i .. 8i+7 give the 8 row addresses (16 bytes each) of matrix i;
// register ri of lane (4 g + t) receives row g, elements 2t, 2t+1 of matrix i. With .trans it
// receives rows 2t, 2t+1 of column g instead.
// Hence, for a row-major tile X in shared memory:
//   A fragment of X[r0 .. r0+15][k0 .. k0+15]: matrices (rows r0.., k0), (r0+8.., k0),
//     (r0.., k0+8), (r0+8.., k0+8): lane l addresses row r0 + l % 16, column k0 + (l / 16) * 8.
//   B fragments with B[k][n] = X[n][k] (K for S = Q K^T), two n8 tiles n0, n0+8 at once:
//     matrices (rows n0.., k0) -> b0 of tile n0, (n0.., k0+8) -> b1 of n0, (n0+8.., k0) -> b0 of
//     n0+8, (n0+8.., k0+8) -> b1 of n0+8: lane l addresses row n0 + l % 8 + (l / 16) * 8,
//     column k0 + ((l / 8) % 2) * 8.
//   B fragments with B[k][n] = X[k][n] (V for O = P V) need .trans, two n8 tiles n0, n0+8:
//     matrices (rows k0.., n0) -> b0 of n0, (k0+8.., n0) -> b1 of n0, (k0.., n0+8) -> b0 of
//     n0+8, (k0+8.., n0+8) -> b1 of n0+8: lane l addresses row k0 + l % 8 + ((l / 8) % 2) * 8,
//     column n0 + (l / 16) * 8.
// ldmatrix.m8n8.x2 is the same with matrices 0, 1 only (addresses from lanes 0 .. 15; the
// backward uses it at hd 16, where a warp's half of D is a single n8 tile).
// Shared tiles are row-major with rows padded by 16 bytes: the row stride is D / 8 + 1 16-byte
// units, odd for every head_dim (3, 5, 9, 17 at hd 16 .. 128), so the 8 rows one ldmatrix phase
// reads start in 8 different 16-byte bank groups of the 128-byte bank line: no conflicts.
// ---------------------------------------------------------------------------------------------
#include "backend/cuda/flash_attn_mma.cuh"

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/flash_attn_common.cuh"
#include "core/error.h"

namespace brisk::cuda::flash_mma {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kPad = 8;  // bf16 elements of row padding (16 bytes), see above
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// ---- PTX wrappers ----------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy; src_bytes 0 writes zeros and reads nothing.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes)
               : "memory");
}
// 4-byte variant (.ca: .cg takes only 16-byte copies).
__device__ __forceinline__ void cp_async_4(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
// Two matrices: lanes 0 .. 7 address matrix 0, lanes 8 .. 15 matrix 1 (the addresses of lanes
// 16 .. 31 are ignored).
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(p)));
}

// c += a b for one m16n8k16 tile.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a bf16 pair, `lo` in the low half (the lower-indexed element of a fragment).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// ---- Tiles -----------------------------------------------------------------------------------

// Issues cp.async copies of `rows` rows of D bf16 (global row stride gstride) into a kRows-row
// shared tile of row stride D + kPad; rows past `rows` are zero-filled (finite for the
// products; the masks drop them). g must point at a readable row (rows >= 1).
template <int D, int kRows, int kThreads>
__device__ __forceinline__ void load_tile_async(bf16* s, const bf16* g, int64_t gstride, int rows) {
  constexpr int kVecs = D / 8;
  for (int idx = int(threadIdx.x); idx < kRows * kVecs; idx += kThreads) {
    const int r = idx / kVecs, c = (idx % kVecs) * 8;
    const bool in = r < rows;
    cp_async_16(s + r * (D + kPad) + c, g + (in ? r : 0) * gstride + c, in ? 16 : 0);
  }
}

using flash_common::key_visible;
using flash_common::Params;
using flash_common::poison_rows;

Params params_of(const FlashAttnShape& s) {
  return Params{s.n_heads, s.n_kv_heads, s.n_heads / s.n_kv_heads, s.window, s.q_stride, s.k_stride, s.v_stride, s.scale};
}

int tiles_of(int len, int tile) { return (len + tile - 1) / tile; }

// ---- Forward ---------------------------------------------------------------------------------

constexpr int kFwdWarps = 8;
constexpr int kFwdThreads = kFwdWarps * kWarp;
constexpr int kFwdBN = 64;  // keys per tile
static_assert(kFwdWarps * 16 == kFwdRows, "forward: 8 warps x 16 query rows");

template <int D> struct FwdSmem {
  static constexpr int kLd = D + kPad;
  static constexpr int kQ = 0;                        // [kFwdRows][kLd]
  static constexpr int kK = kQ + kFwdRows * kLd;      // [2][kFwdBN][kLd]
  static constexpr int kV = kK + 2 * kFwdBN * kLd;    // [2][kFwdBN][kLd]
  static constexpr int kElems = kV + 2 * kFwdBN * kLd;
  static constexpr size_t kBytes = size_t(kElems) * sizeof(bf16);  // 104 KB at hd 128: by shared memory, 2 CTAs per SM fit
};

// CTAs per SM the register budget is shaped for. ptxas (sm_90, no spills): 208 registers at hd
// 128, 150 at 64, 127 at 32, 107 at 16; capping hd 64/128 at 128 registers (2 CTAs) spills
// 44/120 bytes. A tuning knob to measure, not a correctness one.
template <int D> constexpr int kFwdMinBlocks = D <= 32 ? 2 : 1;

template <int D>
__global__ void __launch_bounds__(kFwdThreads, kFwdMinBlocks<D>)
    flash_fwd_mma_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                         const int32_t* __restrict__ cu_seqlens, const int32_t* __restrict__ kv_start,
                         const int32_t* __restrict__ kv_len, Params p, bf16* __restrict__ out,
                         float* __restrict__ lse) {
  using L = FwdSmem<D>;
  constexpr int kLd = L::kLd;
  constexpr int kNT = kFwdBN / 8;  // n8 tiles of S per key tile
  constexpr int kDT = D / 8;       // n8 tiles of O
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* smem = reinterpret_cast<bf16*>(smem_raw);
  bf16* sQ = smem + L::kQ;

  const int seg = int(blockIdx.x), h = int(blockIdx.y);
  const int n_qtiles = int(gridDim.z), qt = n_qtiles - 1 - int(blockIdx.z);  // long causal tiles start first
  const int64_t seg_begin = cu_seqlens[seg];
  const int seg_len = cu_seqlens[seg + 1] - cu_seqlens[seg];
  if (qt == n_qtiles - 1 && seg_len > n_qtiles * kFwdRows) {
    poison_rows(out, seg_begin, n_qtiles * kFwdRows, seg_len, p.n_heads, h, D);
    for (int r = n_qtiles * kFwdRows + int(threadIdx.x); r < seg_len; r += int(blockDim.x))
      lse[(seg_begin + r) * p.n_heads + h] = NAN;
  }
  const int q_first = qt * kFwdRows;
  if (q_first >= seg_len) return;
  // Keys: the segment itself (training), or with kv_start/kv_len (prefill against a KV cache)
  // kv_len rows from row kv_start, the queries being its last seg_len positions. Masks and tile
  // bounds work in key positions; query row r is at position q_off + r.
  const int k_len = kv_len ? kv_len[seg] : seg_len;
  const int64_t k_begin = kv_start ? int64_t(kv_start[seg]) : seg_begin;
  const int q_off = k_len - seg_len;
  const int q_rows = min(kFwdRows, seg_len - q_first), last_q = q_off + q_first + q_rows - 1;
  const int kvh = h / p.group;
  const int warp = int(threadIdx.x) / kWarp, lane = int(threadIdx.x) % kWarp;
  const int g = lane / 4, t = lane % 4;
  const int r0 = warp * 16;  // the warp's rows r0 .. r0 + 15 of the tile
  // The warp's real query positions: wq_first .. wq_last (none when wq_first > wq_last).
  const int wq_first = q_off + q_first + r0, wq_last = min(q_off + q_first + r0 + 15, last_q);

  // Key tiles some query of the CTA sees: from the window start of the first query to the
  // diagonal of the last (keys > last_q are invisible, causal).
  const int k_lo = p.window > 0 ? max(0, q_off + q_first - p.window + 1) : 0;
  const int kt_begin = k_lo / kFwdBN, kt_end = last_q / kFwdBN;  // inclusive
  const bf16* k_head = k + k_begin * p.k_stride + int64_t(kvh) * D;
  const bf16* v_head = v + k_begin * p.v_stride + int64_t(kvh) * D;

  auto load_kv = [&](int kt, int buf) {
    const int k_first = kt * kFwdBN, rows = min(kFwdBN, k_len - k_first);
    load_tile_async<D, kFwdBN, kFwdThreads>(smem + L::kK + buf * kFwdBN * kLd, k_head + k_first * p.k_stride,
                                            p.k_stride, rows);
    load_tile_async<D, kFwdBN, kFwdThreads>(smem + L::kV + buf * kFwdBN * kLd, v_head + k_first * p.v_stride,
                                            p.v_stride, rows);
  };
  load_tile_async<D, kFwdRows, kFwdThreads>(sQ, q + (seg_begin + q_first) * p.q_stride + int64_t(h) * D, p.q_stride,
                                            q_rows);
  load_kv(kt_begin, 0);
  cp_async_commit();

  // O accumulators: o[j] is the C fragment of columns 8j .. 8j+7 (rows g and g+8 of the warp).
  float o[kDT][4];
#pragma unroll
  for (int j = 0; j < kDT; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  // Running max (log2 units: scores * scale * log2 e) and this thread's partial sums of rows g
  // and g + 8 (over its columns; the 4 lanes of a row are summed at the end: every lane of the
  // row applies the same rescale factors, so the partial sums stay consistent).
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};
  const float scale_log2 = p.scale * kLog2e;

  for (int kt = kt_begin; kt <= kt_end; ++kt) {
    const int buf = (kt - kt_begin) % 2;
    cp_async_wait_all();
    __syncthreads();  // tile kt is in; every warp is done with tile kt - 1 (the other buffer)
    if (kt < kt_end) load_kv(kt + 1, buf ^ 1);
    cp_async_commit();  // possibly empty group: keeps wait_all simple

    const int k_first = kt * kFwdBN;
    // Does the warp see any key of this tile? (No real rows; tile entirely after the warp's
    // last query; tile entirely before the window of its first query.)
    if (wq_first > wq_last || k_first > wq_last || (p.window > 0 && k_first + kFwdBN - 1 <= wq_first - p.window))
      continue;
    const bf16* sK = smem + L::kK + buf * kFwdBN * kLd;
    const bf16* sV = smem + L::kV + buf * kFwdBN * kLd;

    // S = Q K^T for the warp's 16 rows x 64 keys.
    float s[kNT][4];
#pragma unroll
    for (int j = 0; j < kNT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int k0 = 0; k0 < D; k0 += 16) {
      uint32_t a[4];
      ldmatrix_x4(a, sQ + (r0 + lane % 16) * kLd + k0 + (lane / 16) * 8);
#pragma unroll
      for (int n0 = 0; n0 < kFwdBN; n0 += 16) {
        uint32_t b[4];
        ldmatrix_x4(b, sK + (n0 + lane % 8 + (lane / 16) * 8) * kLd + k0 + ((lane / 8) % 2) * 8);
        mma_bf16(s[n0 / 8], a, b[0], b[1]);
        mma_bf16(s[n0 / 8 + 1], a, b[2], b[3]);
      }
    }

    // Scale to log2 units; mask only where some element can be invisible: keys past the
    // segment end, keys after the warp's first query (causal), keys outside its window.
    const bool need_mask = k_first + kFwdBN > k_len || k_first + kFwdBN - 1 > wq_first ||
                           (p.window > 0 && k_first <= wq_last - p.window);
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[j][e] * scale_log2;
        if (need_mask) {
          const int qpos = wq_first + g + (e / 2) * 8, kpos = k_first + j * 8 + 2 * t + e % 2;
          if (!key_visible(qpos, kpos, k_len, p.window)) x = -INFINITY;
        }
        s[j][e] = x;
      }

    // Online softmax on rows g (i = 0, elements 0, 1) and g + 8 (i = 1, elements 2, 3).
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float m = row_max[i];
#pragma unroll
      for (int j = 0; j < kNT; ++j) m = fmaxf(m, fmaxf(s[j][2 * i], s[j][2 * i + 1]));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));  // the 4 lanes (t) of the row
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
      // A row that has seen only masked keys so far keeps max -inf: exponentiate against 0 so
      // that exp2(-inf - 0) = 0 instead of NaN. alpha rescales the old O and sum (0 while the
      // old max was -inf: they are still zero then).
      const float m_use = m == -INFINITY ? 0.0f : m;
      const float alpha = exp2f(row_max[i] - m_use);
      row_max[i] = m;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < kNT; ++j) {
        s[j][2 * i] = exp2f(s[j][2 * i] - m_use);
        s[j][2 * i + 1] = exp2f(s[j][2 * i + 1] - m_use);
        sum += s[j][2 * i] + s[j][2 * i + 1];
      }
      row_sum[i] = row_sum[i] * alpha + sum;
#pragma unroll
      for (int j = 0; j < kDT; ++j) {
        o[j][2 * i] *= alpha;
        o[j][2 * i + 1] *= alpha;
      }
    }

    // O += P V. P's A fragment for keys 16kk .. 16kk+15 is the C fragments of n8 tiles 2kk and
    // 2kk + 1: a0 = (row g, keys 2t, 2t+1) = s[2kk][0,1], a1 = (row g+8, ...) = s[2kk][2,3],
    // a2 = (row g, keys 2t+8, 2t+9) = s[2kk+1][0,1], a3 = s[2kk+1][2,3].
#pragma unroll
    for (int kk = 0; kk < kFwdBN / 16; ++kk) {
      const uint32_t a[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                             pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int n0 = 0; n0 < D; n0 += 16) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, sV + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * kLd + n0 + (lane / 16) * 8);
        mma_bf16(o[n0 / 8], a, b[0], b[1]);
        mma_bf16(o[n0 / 8 + 1], a, b[2], b[3]);
      }
    }
  }
  cp_async_wait_all();  // nothing may be in flight into shared memory when the CTA exits

  // Every real query row saw at least its own key, so its sum is > 0.
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float sum = row_sum[i];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int qpos = wq_first + g + i * 8;
    if (qpos > wq_last) continue;
    const float inv = 1.0f / sum;
    const int64_t row = (seg_begin + qpos - q_off) * p.n_heads + h;
    bf16* orow = out + row * D;
#pragma unroll
    for (int j = 0; j < kDT; ++j)
      *reinterpret_cast<__nv_bfloat162*>(orow + j * 8 + 2 * t) =
          __floats2bfloat162_rn(o[j][2 * i] * inv, o[j][2 * i + 1] * inv);
    if (t == 0) lse[row] = (row_max[i] + log2f(sum)) * kLn2;
  }
}

template <int D>
void run_forward_d(const bf16* q, const bf16* k, const bf16* v, const int32_t* cu, const int32_t* kv_start,
                   const int32_t* kv_len, const FlashAttnShape& s, bf16* out, float* lse, cudaStream_t stream) {
  constexpr size_t smem = FwdSmem<D>::kBytes;
  BRISK_CUDA_CHECK(cudaFuncSetAttribute(flash_fwd_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid(unsigned(s.n_seg), unsigned(s.n_heads), unsigned(tiles_of(s.max_seqlen, kFwdRows)));
  flash_fwd_mma_kernel<D><<<grid, kFwdThreads, smem, stream>>>(q, k, v, cu, kv_start, kv_len, params_of(s), out, lse);
  check_launch("flash_fwd_mma_kernel");
}


// dst[0] += a, dst[1] += b in L2: one 8-byte vector reduction on sm_90, two scalar ones before.
// The dQ accumulation is the backward's heaviest L2 traffic; pairs instead of single floats took
// fwd+bwd from 116 to 135 TFLOP/s at hd 128 (16-byte quads, after a lane swap, gained nothing
// more). dst is 8-byte aligned (an even f32 index).
__device__ __forceinline__ void add_pair(float* dst, float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2*>(dst), make_float2(a, b));
#else
  atomicAdd(dst, a);
  atomicAdd(dst + 1, b);
#endif
}

// ---- Backward --------------------------------------------------------------------------------
//
// One CTA (8 warps) per (segment, kv head, 64-key tile), looping over the query heads of the GQA
// group and, per head, the 64-query tiles that see its keys (FA2's layout). K and V stay in
// shared memory; Q, dO (cp.async) and lse, delta of step n + 1 load while step n computes.
// Per step:
//   phase 1, warp w = (key slice kr = 16 (w % 4), query half qh = 32 (w / 4)):
//     S^T = K Q^T and dP^T = V dO^T in registers, P^T = exp(S^T scale - lse), dS^T = P^T (dP^T
//     - delta) with the masks applied, stored as bf16 [key][query] tiles in shared memory (the
//     next products need them transposed and across warps);
//   phase 2, warp w = (row slice 16 (w % 4), column half dh = (D / 2)(w / 4); at hd 16 the
//   half is the single n8 tile dh = 0 or 8):
//     dV[keys, dh..] += P^T dO and dK[keys, dh..] += dS^T Q into register accumulators that
//     live across all steps; dQ[queries, dh..] = dS K (dS read transposed with ldmatrix.trans)
//     added to the f32 accumulator with atomicAdd.
// At the end dK (times scale) and dV go straight from registers to global memory.

constexpr int kBwdWarps = 8;
constexpr int kBwdThreads = kBwdWarps * kWarp;
constexpr int kBwdBN = 64;  // keys per CTA
constexpr int kBwdBM = 64;  // queries per step
static_assert(kBwdWarps == 2 * (kBwdBN / 16) && kBwdBM == kBwdBN, "backward: 4 row slices x 2 halves");

template <int D> struct BwdSmem {
  static constexpr int kLd = D + kPad;        // K, V, Q, dO rows
  static constexpr int kLdP = kBwdBM + kPad;  // P^T, dS^T rows ([key][query])
  static constexpr int kK = 0;
  static constexpr int kV = kK + kBwdBN * kLd;
  static constexpr int kQ = kV + kBwdBN * kLd;      // [2][kBwdBM][kLd]
  static constexpr int kdO = kQ + 2 * kBwdBM * kLd;  // [2][kBwdBM][kLd]
  static constexpr int kPt = kdO + 2 * kBwdBM * kLd;
  static constexpr int kdSt = kPt + kBwdBN * kLdP;
  static constexpr int kElems = kdSt + kBwdBN * kLdP;  // bf16 part; then f32 lse, delta [2][kBwdBM]
  static constexpr size_t kLseOff = size_t(kElems) * sizeof(bf16);
  static constexpr size_t kDeltaOff = kLseOff + 2 * kBwdBM * sizeof(float);
  static constexpr size_t kBytes = kDeltaOff + 2 * kBwdBM * sizeof(float);  // 121 KB at hd 128, 73 KB at 64
  static_assert(kLseOff % 16 == 0, "f32 arrays after the bf16 tiles");
};

template <int D> constexpr int kBwdMinBlocks = 1;

template <int D>
__global__ void __launch_bounds__(kBwdThreads, kBwdMinBlocks<D>)
    flash_bwd_mma_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                         const bf16* __restrict__ dout, const float* __restrict__ lse,
                         const float* __restrict__ delta, const int32_t* __restrict__ cu_seqlens, Params p,
                         float* __restrict__ dq_acc, bf16* __restrict__ dk, bf16* __restrict__ dv) {
  using L = BwdSmem<D>;
  constexpr int kLd = L::kLd, kLdP = L::kLdP;
  constexpr int kHalfTiles = D / 2 / 8;  // n8 tiles in a half row of D: 1 at hd 16, else even
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* smem = reinterpret_cast<bf16*>(smem_raw);
  const bf16* sK = smem + L::kK;
  const bf16* sV = smem + L::kV;
  bf16* sPt = smem + L::kPt;
  bf16* sdSt = smem + L::kdSt;
  float* sLse = reinterpret_cast<float*>(smem_raw + L::kLseOff);      // [2][kBwdBM], natural log
  float* sDelta = reinterpret_cast<float*>(smem_raw + L::kDeltaOff);  // [2][kBwdBM]

  const int seg = int(blockIdx.x), kvh = int(blockIdx.y), kt = int(blockIdx.z), n_ktiles = int(gridDim.z);
  const int64_t seg_begin = cu_seqlens[seg];
  const int seg_len = cu_seqlens[seg + 1] - cu_seqlens[seg];
  if (kt == n_ktiles - 1 && seg_len > n_ktiles * kBwdBN) {  // max_seqlen too small: see poison_rows
    poison_rows(dk, seg_begin, n_ktiles * kBwdBN, seg_len, p.n_kv_heads, kvh, D);
    poison_rows(dv, seg_begin, n_ktiles * kBwdBN, seg_len, p.n_kv_heads, kvh, D);
    for (int64_t i = threadIdx.x; i < int64_t(seg_len - n_ktiles * kBwdBN) * D * p.group; i += blockDim.x) {
      const int64_t r = i / (int64_t(D) * p.group), rest = i % (int64_t(D) * p.group);
      const int h = kvh * p.group + int(rest / D);
      dq_acc[((seg_begin + n_ktiles * kBwdBN + r) * p.n_heads + h) * D + rest % D] = NAN;
    }
  }
  const int k_first = kt * kBwdBN;
  if (k_first >= seg_len) return;
  const int k_rows = min(kBwdBN, seg_len - k_first), last_k = k_first + k_rows - 1;
  const int warp = int(threadIdx.x) / kWarp, lane = int(threadIdx.x) % kWarp;
  const int g = lane / 4, t = lane % 4;
  const int slice = 16 * (warp % 4);  // phase 1: key rows; phase 2: key rows (dK, dV), query rows (dQ)
  const int qh = (kBwdBM / 2) * (warp / 4), dh = (D / 2) * (warp / 4);

  // Steps: (head of the group, query tile) pairs, the query tiles holding a query that sees a
  // key of [k_first, last_k]: from the diagonal to the segment end or the window's end.
  const int q_end = p.window > 0 ? min(seg_len, last_k + p.window) : seg_len;
  const int qt_begin = k_first / kBwdBM, n_qt = (q_end - 1) / kBwdBM - qt_begin + 1;
  const int n_steps = n_qt * p.group;
  const int64_t dout_stride = int64_t(p.n_heads) * D;

  auto load_step = [&](int n, int buf) {
    const int h = kvh * p.group + n / n_qt, q_first = (qt_begin + n % n_qt) * kBwdBM;
    const int q_rows = min(kBwdBM, seg_len - q_first);
    const int64_t row0 = seg_begin + q_first;
    load_tile_async<D, kBwdBM, kBwdThreads>(smem + L::kQ + buf * kBwdBM * kLd, q + row0 * p.q_stride + int64_t(h) * D,
                                            p.q_stride, q_rows);
    load_tile_async<D, kBwdBM, kBwdThreads>(smem + L::kdO + buf * kBwdBM * kLd, dout + row0 * dout_stride + int64_t(h) * D,
                                            dout_stride, q_rows);
    // lse, delta asynchronously too (a plain load would stall the step on its latency); rows
    // past the segment are zero-filled (their P is masked to 0).
    for (int r = int(threadIdx.x); r < kBwdBM; r += kBwdThreads) {
      const int64_t i = (row0 + (r < q_rows ? r : 0)) * p.n_heads + h;
      cp_async_4(sLse + buf * kBwdBM + r, lse + i, r < q_rows ? 4 : 0);
      cp_async_4(sDelta + buf * kBwdBM + r, delta + i, r < q_rows ? 4 : 0);
    }
  };
  load_tile_async<D, kBwdBN, kBwdThreads>(smem + L::kK, k + (seg_begin + k_first) * p.k_stride + int64_t(kvh) * D,
                                          p.k_stride, k_rows);
  load_tile_async<D, kBwdBN, kBwdThreads>(smem + L::kV, v + (seg_begin + k_first) * p.v_stride + int64_t(kvh) * D,
                                          p.v_stride, k_rows);
  load_step(0, 0);
  cp_async_commit();

  float dk_acc[kHalfTiles][4], dv_acc[kHalfTiles][4];  // key rows slice + g (+8), columns dh + 8j + 2t (+1)
#pragma unroll
  for (int j = 0; j < kHalfTiles; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk_acc[j][e] = dv_acc[j][e] = 0.0f;

  for (int n = 0; n < n_steps; ++n) {
    const int buf = n % 2;
    cp_async_wait_all();
    __syncthreads();  // step n's tiles are in; every warp is done with step n - 1 (other buffer, P^T, dS^T)
    if (n + 1 < n_steps) load_step(n + 1, buf ^ 1);
    cp_async_commit();
    const int h = kvh * p.group + n / n_qt, q_first = (qt_begin + n % n_qt) * kBwdBM;
    const int q_rows = min(kBwdBM, seg_len - q_first);
    const bf16* sQ = smem + L::kQ + buf * kBwdBM * kLd;
    const bf16* sdO = smem + L::kdO + buf * kBwdBM * kLd;
    const float* lse_ln = sLse + buf * kBwdBM;
    const float* dlt = sDelta + buf * kBwdBM;

    // Phase 1: S^T, dP^T for keys slice.., queries qh .. qh + 31 (4 n8 tiles).
    {
      float st[4][4], dpt[4][4];
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) st[j][e] = dpt[j][e] = 0.0f;
#pragma unroll
      for (int k0 = 0; k0 < D; k0 += 16) {
        uint32_t a_k[4], a_v[4];
        ldmatrix_x4(a_k, sK + (slice + lane % 16) * kLd + k0 + (lane / 16) * 8);
        ldmatrix_x4(a_v, sV + (slice + lane % 16) * kLd + k0 + (lane / 16) * 8);
#pragma unroll
        for (int n0 = 0; n0 < kBwdBM / 2; n0 += 16) {
          const int brow = qh + n0 + lane % 8 + (lane / 16) * 8, bcol = k0 + ((lane / 8) % 2) * 8;
          uint32_t b[4];
          ldmatrix_x4(b, sQ + brow * kLd + bcol);
          mma_bf16(st[n0 / 8], a_k, b[0], b[1]);
          mma_bf16(st[n0 / 8 + 1], a_k, b[2], b[3]);
          ldmatrix_x4(b, sdO + brow * kLd + bcol);
          mma_bf16(dpt[n0 / 8], a_v, b[0], b[1]);
          mma_bf16(dpt[n0 / 8 + 1], a_v, b[2], b[3]);
        }
      }
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int i = 0; i < 2; ++i) {  // element pair (2i, 2i+1): key row slice + g + 8i
          const int key = slice + g + 8 * i, qc = qh + 8 * j + 2 * t;
          float pv[2], ds[2];
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const bool vis = key_visible(q_first + qc + e, k_first + key, seg_len, p.window);
            pv[e] = vis ? exp2f((st[j][2 * i + e] * p.scale - lse_ln[qc + e]) * kLog2e) : 0.0f;
            ds[e] = pv[e] * (dpt[j][2 * i + e] - dlt[qc + e]);
          }
          *reinterpret_cast<uint32_t*>(sPt + key * kLdP + qc) = pack_bf16(pv[0], pv[1]);
          *reinterpret_cast<uint32_t*>(sdSt + key * kLdP + qc) = pack_bf16(ds[0], ds[1]);
        }
    }
    __syncthreads();  // every warp's P^T, dS^T are in

    // Phase 2a: dV += P^T dO, dK += dS^T Q for key rows slice.., columns dh .. dh + D/2 - 1.
#pragma unroll
    for (int kq = 0; kq < kBwdBM; kq += 16) {
      uint32_t a_p[4], a_ds[4];
      ldmatrix_x4(a_p, sPt + (slice + lane % 16) * kLdP + kq + (lane / 16) * 8);
      ldmatrix_x4(a_ds, sdSt + (slice + lane % 16) * kLdP + kq + (lane / 16) * 8);
      if constexpr (kHalfTiles % 2 == 0) {  // hd >= 32: n8 tiles in pairs, one .x4 load per pair
#pragma unroll
        for (int n0 = 0; n0 < D / 2; n0 += 16) {
          const int brow = kq + lane % 8 + ((lane / 8) % 2) * 8, bcol = dh + n0 + (lane / 16) * 8;
          uint32_t b[4];
          ldmatrix_x4_trans(b, sdO + brow * kLd + bcol);
          mma_bf16(dv_acc[n0 / 8], a_p, b[0], b[1]);
          mma_bf16(dv_acc[n0 / 8 + 1], a_p, b[2], b[3]);
          ldmatrix_x4_trans(b, sQ + brow * kLd + bcol);
          mma_bf16(dk_acc[n0 / 8], a_ds, b[0], b[1]);
          mma_bf16(dk_acc[n0 / 8 + 1], a_ds, b[2], b[3]);
        }
      } else {  // hd 16: the half is one n8 tile, columns dh .. dh + 7 (dh = 0 or 8)
        static_assert(kHalfTiles == 1, "an odd half-row tile count only at hd 16");
        // .x2 .trans: matrix 0 = rows kq .. kq+7 -> b0, matrix 1 = rows kq+8 .. kq+15 -> b1, both
        // at column dh: lane l (l < 16) addresses row kq + l % 8 + (l / 8) * 8, the formula
        // below (lanes 16 .. 31 repeat lanes 0 .. 15; ignored).
        const int brow = kq + lane % 8 + ((lane / 8) % 2) * 8;
        uint32_t b[2];
        ldmatrix_x2_trans(b, sdO + brow * kLd + dh);
        mma_bf16(dv_acc[0], a_p, b[0], b[1]);
        ldmatrix_x2_trans(b, sQ + brow * kLd + dh);
        mma_bf16(dk_acc[0], a_ds, b[0], b[1]);
      }
    }

    // Phase 2b: dQ[query rows slice.., columns dh..] = dS K. A(q, key) = dS^T[key][q]: with
    // .trans, matrix i covers stored rows (keys) kk + 8 (i / 2), columns (queries) slice + 8 (i % 2).
    {
      float dq[kHalfTiles][4];
#pragma unroll
      for (int j = 0; j < kHalfTiles; ++j) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kBwdBN; kk += 16) {
        uint32_t a[4];
        ldmatrix_x4_trans(a, sdSt + (kk + lane % 8 + (lane / 16) * 8) * kLdP + slice + ((lane / 8) % 2) * 8);
        const int brow = kk + lane % 8 + ((lane / 8) % 2) * 8;
        if constexpr (kHalfTiles % 2 == 0) {
#pragma unroll
          for (int n0 = 0; n0 < D / 2; n0 += 16) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, sK + brow * kLd + dh + n0 + (lane / 16) * 8);
            mma_bf16(dq[n0 / 8], a, b[0], b[1]);
            mma_bf16(dq[n0 / 8 + 1], a, b[2], b[3]);
          }
        } else {  // hd 16: one n8 tile, as in phase 2a
          uint32_t b[2];
          ldmatrix_x2_trans(b, sK + brow * kLd + dh);
          mma_bf16(dq[0], a, b[0], b[1]);
        }
      }
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int qr = slice + g + 8 * i;
        if (qr >= q_rows) continue;
        float* dst = dq_acc + ((seg_begin + q_first + qr) * p.n_heads + h) * D + dh + 2 * t;
#pragma unroll
        for (int j = 0; j < kHalfTiles; ++j) add_pair(dst + 8 * j, p.scale * dq[j][2 * i], p.scale * dq[j][2 * i + 1]);
      }
    }
  }
  cp_async_wait_all();  // the last (empty) group; nothing in flight at exit

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int kr = slice + g + 8 * i;
    if (kr >= k_rows) continue;
    const int64_t o = ((seg_begin + k_first + kr) * p.n_kv_heads + kvh) * D + dh + 2 * t;
#pragma unroll
    for (int j = 0; j < kHalfTiles; ++j) {
      *reinterpret_cast<__nv_bfloat162*>(dk + o + 8 * j) =
          __floats2bfloat162_rn(p.scale * dk_acc[j][2 * i], p.scale * dk_acc[j][2 * i + 1]);
      *reinterpret_cast<__nv_bfloat162*>(dv + o + 8 * j) = __floats2bfloat162_rn(dv_acc[j][2 * i], dv_acc[j][2 * i + 1]);
    }
  }
}

template <int D>
void run_backward_d(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* lse, const float* delta,
                    const int32_t* cu, const FlashAttnShape& s, float* dq_acc, bf16* dk, bf16* dv, cudaStream_t stream) {
  constexpr size_t smem = BwdSmem<D>::kBytes;
  BRISK_CUDA_CHECK(cudaFuncSetAttribute(flash_bwd_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid(unsigned(s.n_seg), unsigned(s.n_kv_heads), unsigned(tiles_of(s.max_seqlen, kBwdBN)));
  flash_bwd_mma_kernel<D><<<grid, kBwdThreads, smem, stream>>>(q, k, v, dout, lse, delta, cu, params_of(s), dq_acc, dk, dv);
  check_launch("flash_bwd_mma_kernel");
}

}  // namespace

void run_forward(const bf16* q, const bf16* k, const bf16* v, const int32_t* cu_seqlens, const FlashAttnShape& s,
                 bf16* out, float* lse, cudaStream_t stream, const int32_t* kv_start, const int32_t* kv_len) {
  BRISK_ASSERT(s.q_stride > 0 && s.k_stride > 0 && s.v_stride > 0, "flash_mma: strides must be resolved");
  BRISK_ASSERT((kv_start == nullptr) == (kv_len == nullptr), "flash_mma: kv_start and kv_len go together");
  switch (s.head_dim) {
    case 16: run_forward_d<16>(q, k, v, cu_seqlens, kv_start, kv_len, s, out, lse, stream); break;
    case 32: run_forward_d<32>(q, k, v, cu_seqlens, kv_start, kv_len, s, out, lse, stream); break;
    case 64: run_forward_d<64>(q, k, v, cu_seqlens, kv_start, kv_len, s, out, lse, stream); break;
    case 128: run_forward_d<128>(q, k, v, cu_seqlens, kv_start, kv_len, s, out, lse, stream); break;
    default: BRISK_ASSERT(false, "flash_mma: head_dim ", s.head_dim, " passed the shape check");
  }
}

bool backward_implemented(const FlashAttnShape&) { return true; }

void run_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* lse, const float* delta,
                  const int32_t* cu_seqlens, const FlashAttnShape& s, float* dq_acc, bf16* dk, bf16* dv,
                  cudaStream_t stream) {
  BRISK_ASSERT(s.q_stride > 0 && s.k_stride > 0 && s.v_stride > 0, "flash_mma: strides must be resolved");
  switch (s.head_dim) {
    case 16: run_backward_d<16>(q, k, v, dout, lse, delta, cu_seqlens, s, dq_acc, dk, dv, stream); break;
    case 32: run_backward_d<32>(q, k, v, dout, lse, delta, cu_seqlens, s, dq_acc, dk, dv, stream); break;
    case 64: run_backward_d<64>(q, k, v, dout, lse, delta, cu_seqlens, s, dq_acc, dk, dv, stream); break;
    case 128: run_backward_d<128>(q, k, v, dout, lse, delta, cu_seqlens, s, dq_acc, dk, dv, stream); break;
    default: BRISK_ASSERT(false, "flash_mma: head_dim ", s.head_dim, " passed the shape check");
  }
}

}  // namespace brisk::cuda::flash_mma
