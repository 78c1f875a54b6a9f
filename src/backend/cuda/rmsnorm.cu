// RMSNorm forward and backward. One block per row (forward), or a grid-stride loop over rows
// with per-block dw partial sums (backward); the row sums use block_reduce in fp32.
#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/rmsnorm.h"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kThreads = 256;
// Backward blocks (and so dw partial rows): enough to fill an H100's 132 SMs a few times over.
constexpr int64_t kMaxBackwardBlocks = 512;

// 1 / sqrt(mean(x^2) + eps) of one row, in fp32 with correctly rounded sqrt and division (not
// rsqrtf, whose 2-ulp error would show against the CPU reference).
__device__ float row_inv_rms(const __nv_bfloat16* xr, int H, float eps) {
  float ss = 0.0f;
  for (int k = threadIdx.x; k < H; k += blockDim.x) {
    const float v = to_f32(xr[k]);
    ss += v * v;
  }
  ss = block_sum(ss);
  return 1.0f / sqrtf(ss / float(H) + eps);
}

template <typename W>
__global__ void rmsnorm_kernel(const __nv_bfloat16* x, const W* w, __nv_bfloat16* out, int H, float eps,
                               float offset) {
  const int64_t row = blockIdx.x;
  const __nv_bfloat16* xr = x + row * H;
  __nv_bfloat16* orow = out + row * H;
  const float inv = row_inv_rms(xr, H, eps);  // all reads of the row end before any write (alias ok)
  for (int k = threadIdx.x; k < H; k += blockDim.x)
    orow[k] = from_f32<__nv_bfloat16>((to_f32(xr[k]) * inv) * (to_f32(w[k]) + offset));
}

// Per row, with g = w + offset, r = inv rms, gx = sum(dy * g * x):
//   dx = r * dy * g - x * r^3 * gx / H,   dw += dy * x * r.
// Block b owns rows b, b + gridDim.x, ... and its own row of `partial` [gridDim.x, H], which only
// its threads touch (thread k owns columns k, k + blockDim.x, ...): no atomics, no races.
__global__ void rmsnorm_backward_kernel(const __nv_bfloat16* x, const float* w, const __nv_bfloat16* dy,
                                        __nv_bfloat16* dx, float* partial, int64_t n, int H, float eps,
                                        float offset, const __nv_bfloat16* residual) {
  float* my_partial = partial ? partial + int64_t(blockIdx.x) * H : nullptr;
  if (my_partial)
    for (int k = threadIdx.x; k < H; k += blockDim.x) my_partial[k] = 0.0f;
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const __nv_bfloat16* xr = x + row * H;
    const __nv_bfloat16* dyr = dy + row * H;
    __nv_bfloat16* dxr = dx + row * H;
    const float r = row_inv_rms(xr, H, eps);
    float gx = 0.0f;
    for (int k = threadIdx.x; k < H; k += blockDim.x) gx += to_f32(dyr[k]) * (w[k] + offset) * to_f32(xr[k]);
    gx = block_sum(gx);
    const float c = r * r * r * gx / float(H);
    for (int k = threadIdx.x; k < H; k += blockDim.x) {
      const float xv = to_f32(xr[k]), dyv = to_f32(dyr[k]);
      if (my_partial) my_partial[k] += dyv * xv * r;
      const float res = residual ? to_f32(residual[row * H + k]) : 0.0f;
      dxr[k] = from_f32<__nv_bfloat16>(r * dyv * (w[k] + offset) - c * xv + res);
    }
  }
}

// The same dx without dw (LoRA training: the norm weights are frozen), a warp per row with
// 16-byte loads and warp reductions only: the block-per-row kernel above spends its time in
// block-wide barriers (four per row), this one runs near the memory bandwidth. Pass 1 sums
// x^2 and dy * g * x over the lane's 8-element chunks; pass 2 re-reads them (L1-resident) and
// writes dx. dy or the residual may alias dx: a lane reads a chunk before writing it.
constexpr int kRowWarps = 8;

__device__ __forceinline__ void load8(const __nv_bfloat16* p, float* f) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

__global__ void __launch_bounds__(kRowWarps * kWarp)
    rmsnorm_backward_rows_kernel(const __nv_bfloat16* x, const float* w, const __nv_bfloat16* dy, __nv_bfloat16* dx,
                                 int64_t n, int H, float eps, float offset, const __nv_bfloat16* residual) {
  const int lane = threadIdx.x % kWarp;
  for (int64_t row = int64_t(blockIdx.x) * kRowWarps + threadIdx.x / kWarp; row < n;
       row += int64_t(gridDim.x) * kRowWarps) {
    const __nv_bfloat16* xr = x + row * H;
    const __nv_bfloat16* dyr = dy + row * H;
    float ss = 0.0f, gx = 0.0f;
    for (int c = lane * 8; c < H; c += kWarp * 8) {
      float xv[8], dv[8];
      load8(xr + c, xv);
      load8(dyr + c, dv);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        ss += xv[e] * xv[e];
        gx += dv[e] * (w[c + e] + offset) * xv[e];
      }
    }
    ss = warp_reduce(ss, SumOp{});
    gx = warp_reduce(gx, SumOp{});
    const float r = 1.0f / sqrtf(ss / float(H) + eps);
    const float cc = r * r * r * gx / float(H);
    for (int c = lane * 8; c < H; c += kWarp * 8) {
      float xv[8], dv[8], rv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      load8(xr + c, xv);
      load8(dyr + c, dv);
      if (residual) load8(residual + row * H + c, rv);
      uint32_t o[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float a = r * dv[2 * i] * (w[c + 2 * i] + offset) - cc * xv[2 * i] + rv[2 * i];
        const float b = r * dv[2 * i + 1] * (w[c + 2 * i + 1] + offset) - cc * xv[2 * i + 1] + rv[2 * i + 1];
        const __nv_bfloat162 h2 = __floats2bfloat162_rn(a, b);
        o[i] = *reinterpret_cast<const uint32_t*>(&h2);
      }
      *reinterpret_cast<uint4*>(dx + row * H + c) = make_uint4(o[0], o[1], o[2], o[3]);
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// dw[k] (+)= sum over blocks b of partial[b, k], summed in block order (deterministic).
__global__ void sum_partials_kernel(const float* partial, int n_partial, int H, float* dw, bool accumulate) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= H) return;
  float s = 0.0f;
  for (int b = 0; b < n_partial; ++b) s += partial[int64_t(b) * H + k];
  dw[k] = accumulate ? dw[k] + s : s;
}

int64_t backward_blocks(int64_t n) { return std::min(n, kMaxBackwardBlocks); }

template <typename W>
void launch_forward(const __nv_bfloat16* x, const W* w, __nv_bfloat16* out, int64_t n, int H, float eps,
                    float offset, cudaStream_t stream) {
  BRISK_ASSERT(n >= 0 && H > 0 && n <= INT32_MAX, "rmsnorm: ", n, " rows of ", H);
  if (n == 0) return;
  rmsnorm_kernel<W><<<unsigned(n), kThreads, 0, stream>>>(x, w, out, H, eps, offset);
  check_launch("rmsnorm_kernel");
}

}  // namespace

void launch_rmsnorm(const __nv_bfloat16* x, const float* w, __nv_bfloat16* out, int64_t n, int H, float eps,
                    float offset, cudaStream_t stream) {
  launch_forward(x, w, out, n, H, eps, offset, stream);
}

void launch_rmsnorm(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* out, int64_t n, int H, float eps,
                    float offset, cudaStream_t stream) {
  launch_forward(x, w, out, n, H, eps, offset, stream);
}

size_t rmsnorm_backward_scratch_bytes(int64_t n, int H) {
  return size_t(backward_blocks(n)) * size_t(H) * sizeof(float);
}

void launch_rmsnorm_backward(const __nv_bfloat16* x, const float* w, const __nv_bfloat16* dy, __nv_bfloat16* dx,
                             float* dw, bool accumulate_dw, float* scratch, int64_t n, int H, float eps, float offset,
                             cudaStream_t stream, const __nv_bfloat16* dx_residual) {
  BRISK_ASSERT(n >= 0 && H > 0, "rmsnorm_backward: ", n, " rows of ", H);
  BRISK_ASSERT(!dw || scratch, "rmsnorm_backward: dw needs scratch (rmsnorm_backward_scratch_bytes)");
  if (!dw && H % 8 == 0 && aligned16(x) && aligned16(dy) && aligned16(dx) && (!dx_residual || aligned16(dx_residual))) {
    if (n == 0) return;
    const int64_t blocks = std::min<int64_t>((n + kRowWarps - 1) / kRowWarps, 65535);
    rmsnorm_backward_rows_kernel<<<unsigned(blocks), kRowWarps * kWarp, 0, stream>>>(x, w, dy, dx, n, H, eps, offset,
                                                                                     dx_residual);
    check_launch("rmsnorm_backward_rows_kernel");
    return;
  }
  const int64_t blocks = backward_blocks(n);
  if (blocks > 0) {
    rmsnorm_backward_kernel<<<unsigned(blocks), kThreads, 0, stream>>>(x, w, dy, dx, dw ? scratch : nullptr, n, H,
                                                                       eps, offset, dx_residual);
    check_launch("rmsnorm_backward_kernel");
  }
  if (dw) {
    // With no rows the sum is empty: dw is zeroed (or left as is when accumulating).
    sum_partials_kernel<<<unsigned((H + kThreads - 1) / kThreads), kThreads, 0, stream>>>(scratch, int(blocks), H,
                                                                                           dw, accumulate_dw);
    check_launch("sum_partials_kernel");
  }
}

}  // namespace brisk::cuda
