// GEMV for decoding (gemv.h). One warp per output row j: its 32 lanes walk W[j, :] with uint4
// loads (8 bf16 each, consecutive lanes on consecutive 16 bytes: fully coalesced), kUnroll loads
// in flight per lane before any arithmetic, and multiply each by the matching 8 elements of every
// x row, read from shared memory (lanes read consecutive 16 bytes: no bank conflicts). x is staged
// per block in chunks of at most kStageBytes, so m = 8 rows of k = 14336 fit too. W is read with
// the streaming cache hint (read once per step; it would only evict x and the KV cache from L2).
#include <algorithm>
#include <initializer_list>
#include <map>
#include <mutex>
#include <tuple>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/gemv.h"
#include "backend/cuda/pdl.cuh"
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

// Two f32 -> one word of two bf16 (round to nearest even), low element first in memory.
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  const __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&p);
}

// acc + the 8 products of two bf16 octets, in fp32.
__device__ __forceinline__ float dot8(const uint4& a, const uint4& b, float acc) {
  acc = dot2(a.x, b.x, acc);
  acc = dot2(a.y, b.y, acc);
  acc = dot2(a.z, b.z, acc);
  return dot2(a.w, b.w, acc);
}

// How a block fills its shared copy of x ([M][stride] uint4) for elements [c0, c0 + 8 len).
// Plain: M rows of bf16 x. The fused inputs (one row, staged whole: c0 = 0, len = k / 8) compute
// the GEMV's input from the previous kernel's output while staging, which saves a launch and a
// round trip through memory per fused op in a decode step.
struct PlainInput {
  const __nv_bfloat16* x;
  template <int M> __device__ void stage(uint4* xs, int64_t k, int64_t c0, int len, int stride) const {
#pragma unroll
    for (int r = 0; r < M; ++r) {
      const uint4* xr = reinterpret_cast<const uint4*>(x + r * k + c0);
      for (int v = threadIdx.x; v < len; v += blockDim.x) xs[r * stride + v] = __ldg(xr + v);
    }
  }
};

// xn = bf16((x * inv_rms) * w) of the f32 residual row x[row ? *row : 0]: the arithmetic and
// summation order of launch_rmsnorm_f32_rows (256 threads, strided sum, block_sum), so the
// staged row is bit-identical to what that kernel writes. Block 0 also stores it to `out`.
struct RmsNormInput {
  const float* x;
  const int32_t* row;
  const float* w;
  float eps;
  __nv_bfloat16* out;
  template <int M> __device__ void stage(uint4* xs, int64_t k, int64_t, int len, int) const {
    const float* xr = x + (row ? int64_t(*row) : 0) * k;
    float ss = 0.0f;
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) ss += xr[j] * xr[j];
    ss = block_sum(ss);
    const float inv = 1.0f / sqrtf(ss / float(k) + eps);
    for (int v = threadIdx.x; v < len; v += blockDim.x) {
      const float4 a = __ldg(reinterpret_cast<const float4*>(xr) + 2 * v);
      const float4 b = __ldg(reinterpret_cast<const float4*>(xr) + 2 * v + 1);
      const float4 wa = __ldg(reinterpret_cast<const float4*>(w) + 2 * v);
      const float4 wb = __ldg(reinterpret_cast<const float4*>(w) + 2 * v + 1);
      uint4 o;
      o.x = pack2((a.x * inv) * wa.x, (a.y * inv) * wa.y);
      o.y = pack2((a.z * inv) * wa.z, (a.w * inv) * wa.w);
      o.z = pack2((b.x * inv) * wb.x, (b.y * inv) * wb.y);
      o.w = pack2((b.z * inv) * wb.z, (b.w * inv) * wb.w);
      xs[v] = o;
      if (out != nullptr && blockIdx.x == 0) reinterpret_cast<uint4*>(out)[v] = o;
    }
  }
};

// act = bf16(silu(gate) * up), the arithmetic of launch_swiglu. Block 0 also stores it to `out`.
struct SwigluInput {
  const __nv_bfloat16* gate;
  const __nv_bfloat16* up;
  __nv_bfloat16* out;
  __device__ static float act(uint32_t g2, uint32_t u2, bool high) {
    const float g = __uint_as_float(high ? g2 & 0xffff0000u : g2 << 16);
    const float u = __uint_as_float(high ? u2 & 0xffff0000u : u2 << 16);
    return g / (1.0f + expf(-g)) * u;
  }
  __device__ static uint32_t act2(uint32_t g2, uint32_t u2) { return pack2(act(g2, u2, false), act(g2, u2, true)); }
  template <int M> __device__ void stage(uint4* xs, int64_t, int64_t, int len, int) const {
    for (int v = threadIdx.x; v < len; v += blockDim.x) {
      const uint4 g = __ldg(reinterpret_cast<const uint4*>(gate) + v);
      const uint4 u = __ldg(reinterpret_cast<const uint4*>(up) + v);
      const uint4 o{act2(g.x, u.x), act2(g.y, u.y), act2(g.z, u.z), act2(g.w, u.w)};
      xs[v] = o;
      if (out != nullptr && blockIdx.x == 0) reinterpret_cast<uint4*>(out)[v] = o;
    }
  }
};

// Block b computes row groups b, b + gridDim.x, ... (kWarpsPerBlock rows each, a warp per row).
// When x fits the stage in one chunk (always for the fused inputs) it is staged once per block
// and the grid is sized to what fits on the GPU at once, so staging (which for the fused inputs
// means reading and transforming a whole row) is paid per resident block, not per row group.
template <int M, typename OutT, typename In>
__global__ void __launch_bounds__(kThreads) gemv_kernel(In in, const __nv_bfloat16* __restrict__ w, OutT* y,
                                                        int64_t n, int64_t k, int64_t chunk,
                                                        const __nv_bfloat16* __restrict__ bias, float alpha,
                                                        bool accumulate) {
  extern __shared__ uint4 xs[];  // [M][chunk / 8]
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t groups = (n + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const bool single_chunk = chunk >= k;
  const int stride = int(chunk / 8);  // uint4 per staged x row
  // A warp past the last row still takes part in the block's barriers; it reads row n - 1 (in
  // bounds, discarded) instead of branching around the loop.
  const auto row_of = [&](int64_t g) { return g * kWarpsPerBlock + warp; };
  const auto w_row = [&](int64_t row) { return reinterpret_cast<const uint4*>(w + (row < n ? row : n - 1) * k); };

  // W does not depend on the previous kernel: the first load group of this warp's first row is
  // issued before waiting for that kernel (pdl.cuh), so its latency overlaps the wait and the
  // staging of x. Then the next kernel's blocks may be scheduled.
  const int first_len = int((k < chunk ? k : chunk) / 8);
  const bool early = first_len >= kUnroll * kWarp;
  uint4 w_early[kUnroll];
  if (early) {
    const uint4* wr = w_row(row_of(blockIdx.x));
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) w_early[u] = __ldcs(wr + lane + u * kWarp);
  }
  pdl_trigger();
  pdl_wait();

  bool staged = false, first = true;
  for (int64_t g = blockIdx.x; g < groups; g += gridDim.x) {  // uniform over the block
    const int64_t row = row_of(g);
    const uint4* wrow = w_row(row);
    float acc[M];
#pragma unroll
    for (int r = 0; r < M; ++r) acc[r] = 0.0f;
    for (int64_t c0 = 0; c0 < k; c0 += chunk) {
      const int len = int((k - c0 < chunk ? k - c0 : chunk) / 8);  // uint4 in this chunk
      if (!single_chunk || !staged) {
        __syncthreads();  // the previous chunk is consumed
        in.template stage<M>(xs, k, c0, len, stride);
        __syncthreads();
        staged = true;
      }
      const uint4* wc = wrow + c0 / 8;
      int v = lane;
      if (first) {  // c0 = 0 of the block's first row group: the loads issued before the wait
        if (early) {
#pragma unroll
          for (int u = 0; u < kUnroll; ++u)
#pragma unroll
            for (int r = 0; r < M; ++r) acc[r] = dot8(w_early[u], xs[r * stride + v + u * kWarp], acc[r]);
          v += kUnroll * kWarp;
        }
        first = false;
      }
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
}

// Blocks of `kernel` (with `smem` bytes of shared memory) resident on the current device at
// once. Cached: the occupancy query is a host call, and launches come from a graph capture or a
// few tokens' forward.
int resident_blocks(const void* kernel, size_t smem) {
  static std::mutex mu;
  static std::map<std::tuple<int, const void*, size_t>, int> cache;
  int dev = 0;
  BRISK_CUDA_CHECK(cudaGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_tuple(dev, kernel, smem);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  int per_sm = 0, sms = 0;
  BRISK_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
  BRISK_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const int blocks = std::max(1, per_sm) * sms;
  cache.emplace(key, blocks);
  return blocks;
}

template <int M, typename OutT, typename In>
void launch_m(In in, const __nv_bfloat16* w, OutT* y, int64_t n, int64_t k, int64_t chunk, const __nv_bfloat16* bias,
              float alpha, bool accumulate, cudaStream_t stream) {
  const int64_t groups = (n + kWarpsPerBlock - 1) / kWarpsPerBlock;
  BRISK_ASSERT(groups <= INT32_MAX, "gemv: n=", n, " rows is too many");
  const size_t smem = size_t(M) * size_t(chunk) * 2;
  auto* kernel = gemv_kernel<M, OutT, In>;
  // x staged once per block: no more blocks than fit at once. Several chunks: a block per group.
  const int64_t blocks =
      chunk >= k ? std::min<int64_t>(groups, resident_blocks(reinterpret_cast<const void*>(kernel), smem)) : groups;
  launch_programmatic("gemv_kernel", kernel, dim3(unsigned(blocks)), dim3(kThreads), smem, stream, in, w, y, n, k,
                      chunk, bias, alpha, accumulate);
}

template <typename OutT>
void launch(const __nv_bfloat16* w, const __nv_bfloat16* x, OutT* y, int m, int64_t n, int64_t k,
            const __nv_bfloat16* bias, bool accumulate, cudaStream_t stream, float alpha) {
  BRISK_ASSERT(gemv_supported(m, k, w, x), "gemv: unsupported m=", m, " k=", k,
               " (m in 1..8, k a positive multiple of 8, W and x 16-byte aligned)");
  BRISK_ASSERT(n >= 0, "gemv: n=", n);
  if (n == 0) return;
  const int64_t chunk = stage_chunk(m, k);
  const PlainInput in{x};
  switch (m) {
#define BRISK_GEMV_CASE(M) \
  case M: launch_m<M>(in, w, y, n, k, chunk, bias, alpha, accumulate, stream); break;
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
}

void check_fused(const char* name, int64_t n, int64_t k, const void* w, std::initializer_list<const void*> in) {
  bool aligned = gemv_fused_supported(k, w);
  for (const void* p : in) aligned = aligned && p != nullptr && reinterpret_cast<uintptr_t>(p) % 16 == 0;
  BRISK_ASSERT(aligned && n >= 0, name, ": unsupported n=", n, " k=", k,
               " (k a multiple of 8 up to the staging size, 16-byte aligned operands)");
}

}  // namespace

bool gemv_supported(int64_t m, int64_t k, const void* w, const void* x) {
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return m >= 1 && m <= kGemvMaxRows && k > 0 && k % 8 == 0 && aligned(w) && aligned(x);
}

bool gemv_fused_supported(int64_t k, const void* w) {
  return k > 0 && k % 8 == 0 && k <= kStageBytes / 2 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
}

void launch_gemv_rmsnorm(const __nv_bfloat16* w, const float* x, const int32_t* row, const float* norm_w, float eps,
                         __nv_bfloat16* xn_out, void* y, bool y_f32, int64_t n, int64_t k,
                         const __nv_bfloat16* bias, cudaStream_t stream) {
  check_fused("gemv_rmsnorm", n, k, w, {x, norm_w, xn_out ? static_cast<const void*>(xn_out) : x});
  if (n == 0) return;
  const RmsNormInput in{x, row, norm_w, eps, xn_out};
  if (y_f32) launch_m<1>(in, w, static_cast<float*>(y), n, k, k, bias, 1.0f, false, stream);
  else launch_m<1>(in, w, static_cast<__nv_bfloat16*>(y), n, k, k, bias, 1.0f, false, stream);
}

void launch_gemv_swiglu(const __nv_bfloat16* w, const __nv_bfloat16* gate, const __nv_bfloat16* up,
                        __nv_bfloat16* act_out, float* y, int64_t n, int64_t k, bool accumulate, cudaStream_t stream) {
  check_fused("gemv_swiglu", n, k, w, {gate, up, act_out ? static_cast<const void*>(act_out) : gate});
  if (n == 0) return;
  launch_m<1>(SwigluInput{gate, up, act_out}, w, y, n, k, k, nullptr, 1.0f, accumulate, stream);
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
