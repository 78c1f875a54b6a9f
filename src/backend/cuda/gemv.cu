// GEMV for decoding (gemv.h). One warp per output row j: its 32 lanes walk W[j, :] with uint4
// loads (8 bf16 each, consecutive lanes on consecutive 16 bytes: fully coalesced), kUnroll loads
// in flight per lane before any arithmetic, and multiply each by the matching 8 elements of every
// x row, read from shared memory (lanes read consecutive 16 bytes: no bank conflicts). x is staged
// per block in chunks of at most kStageBytes, so m = 8 rows of k = 14336 fit too. W is read with
// the streaming cache hint (read once per step; it would only evict x and the KV cache from L2).
#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/gemv.h"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;                 // = output rows per block
constexpr int kThreads = kWarpsPerBlock * kWarp;
constexpr int kUnroll = 8;                        // uint4 loads of W in flight per lane (128 bytes)
constexpr int64_t kStageBytes = 32 * 1024;        // x staged per chunk (under the 48 KB default)

// Elements of x per row staged at once: the whole row when it fits, a multiple of 8 otherwise.
int64_t stage_chunk(int m, int64_t k) {
  const int64_t fit = (kStageBytes / 2 / m) / 8 * 8;
  return std::min(k, fit);
}

// A bf16 is the high half of an f32: both halves of a 32-bit word convert exactly with shifts
// and masks (no address taken, so the operands stay in registers).
__device__ __forceinline__ float dot2(uint32_t a, uint32_t b, float acc) {
  acc = fmaf(__uint_as_float(a << 16), __uint_as_float(b << 16), acc);
  return fmaf(__uint_as_float(a & 0xffff0000u), __uint_as_float(b & 0xffff0000u), acc);
}

// acc + the 8 products of two bf16 octets, in fp32.
__device__ __forceinline__ float dot8(const uint4& a, const uint4& b, float acc) {
  acc = dot2(a.x, b.x, acc);
  acc = dot2(a.y, b.y, acc);
  acc = dot2(a.z, b.z, acc);
  return dot2(a.w, b.w, acc);
}

template <int M, typename OutT>
__global__ void __launch_bounds__(kThreads) gemv_kernel(const __nv_bfloat16* __restrict__ w,
                                                        const __nv_bfloat16* __restrict__ x, OutT* y, int64_t n,
                                                        int64_t k, int64_t chunk,
                                                        const __nv_bfloat16* __restrict__ bias, float alpha,
                                                        bool accumulate) {
  extern __shared__ uint4 xs[];  // [M][chunk / 8]
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + warp;
  // A warp past the last row still takes part in the block's barriers; it reads row n - 1 (in
  // bounds, discarded) instead of branching around the loop.
  const uint4* wrow = reinterpret_cast<const uint4*>(w + (row < n ? row : n - 1) * k);
  const int stride = int(chunk / 8);  // uint4 per staged x row
  float acc[M];
#pragma unroll
  for (int r = 0; r < M; ++r) acc[r] = 0.0f;

  for (int64_t c0 = 0; c0 < k; c0 += chunk) {
    const int len = int((k - c0 < chunk ? k - c0 : chunk) / 8);  // uint4 in this chunk
    __syncthreads();                                   // the previous chunk is consumed
#pragma unroll
    for (int r = 0; r < M; ++r) {
      const uint4* xr = reinterpret_cast<const uint4*>(x + r * k + c0);
      for (int v = threadIdx.x; v < len; v += kThreads) xs[r * stride + v] = __ldg(xr + v);
    }
    __syncthreads();
    const uint4* wc = wrow + c0 / 8;
    int v = lane;
    for (; v + (kUnroll - 1) * kWarp < len; v += kUnroll * kWarp) {
      uint4 wv[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) wv[u] = __ldcs(wc + v + u * kWarp);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
#pragma unroll
        for (int r = 0; r < M; ++r) acc[r] = dot8(wv[u], xs[r * stride + v + u * kWarp], acc[r]);
    }
    for (; v < len; v += kWarp) {
      const uint4 wv = __ldcs(wc + v);
#pragma unroll
      for (int r = 0; r < M; ++r) acc[r] = dot8(wv, xs[r * stride + v], acc[r]);
    }
  }

  const float b = (bias != nullptr && row < n) ? to_f32(bias[row]) : 0.0f;
#pragma unroll
  for (int r = 0; r < M; ++r) {
    const float s = warp_reduce(acc[r], SumOp{});
    if (lane == r && row < n) {  // spread the stores over lanes
      OutT* out = y + r * n + row;
      float v = alpha * s + b;
      if (accumulate) v += to_f32(*out);
      *out = from_f32<OutT>(v);
    }
  }
}

template <typename OutT>
void launch(const __nv_bfloat16* w, const __nv_bfloat16* x, OutT* y, int m, int64_t n, int64_t k,
            const __nv_bfloat16* bias, bool accumulate, cudaStream_t stream, float alpha) {
  BRISK_ASSERT(gemv_supported(m, k, w, x), "gemv: unsupported m=", m, " k=", k,
               " (m in 1..8, k a positive multiple of 8, W and x 16-byte aligned)");
  BRISK_ASSERT(n >= 0, "gemv: n=", n);
  if (n == 0) return;
  const int64_t chunk = stage_chunk(m, k);
  const size_t smem = size_t(m) * size_t(chunk) * 2;
  const int64_t blocks = (n + kWarpsPerBlock - 1) / kWarpsPerBlock;
  BRISK_ASSERT(blocks <= INT32_MAX, "gemv: n=", n, " rows is too many");
  const unsigned grid = unsigned(blocks);
  switch (m) {
#define BRISK_GEMV_CASE(M)                                                                             \
  case M:                                                                                              \
    gemv_kernel<M, OutT><<<grid, kThreads, smem, stream>>>(w, x, y, n, k, chunk, bias, alpha, accumulate); \
    break;
    BRISK_GEMV_CASE(1)
    BRISK_GEMV_CASE(2)
    BRISK_GEMV_CASE(3)
    BRISK_GEMV_CASE(4)
    BRISK_GEMV_CASE(5)
    BRISK_GEMV_CASE(6)
    BRISK_GEMV_CASE(7)
    BRISK_GEMV_CASE(8)
#undef BRISK_GEMV_CASE
  }
  check_launch("gemv_kernel");
}

}  // namespace

bool gemv_supported(int64_t m, int64_t k, const void* w, const void* x) {
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return m >= 1 && m <= kGemvMaxRows && k > 0 && k % 8 == 0 && aligned(w) && aligned(x);
}

void launch_gemv(const __nv_bfloat16* w, const __nv_bfloat16* x, __nv_bfloat16* y, int m, int64_t n, int64_t k,
                 const __nv_bfloat16* bias, bool accumulate, cudaStream_t stream, float alpha) {
  launch(w, x, y, m, n, k, bias, accumulate, stream, alpha);
}

void launch_gemv(const __nv_bfloat16* w, const __nv_bfloat16* x, float* y, int m, int64_t n, int64_t k,
                 const __nv_bfloat16* bias, bool accumulate, cudaStream_t stream, float alpha) {
  launch(w, x, y, m, n, k, bias, accumulate, stream, alpha);
}

}  // namespace brisk::cuda
