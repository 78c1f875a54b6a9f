// SwiGLU: one thread per element, grid-stride. expf (not __expf): full fp32 accuracy.
#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/swiglu.h"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void swiglu_kernel(const __nv_bfloat16* gate, const __nv_bfloat16* up, __nv_bfloat16* out, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = to_f32(gate[i]), u = to_f32(up[i]);
    out[i] = from_f32<__nv_bfloat16>(g / (1.0f + expf(-g)) * u);
  }
}

// out = g * sig(g) * u:  dup = dout * g * sig(g),  dgate = dout * u * sig(g) * (1 + g * (1 - sig(g))).
__global__ void swiglu_backward_kernel(const __nv_bfloat16* gate, const __nv_bfloat16* up,
                                       const __nv_bfloat16* dout, __nv_bfloat16* dgate, __nv_bfloat16* dup,
                                       int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = to_f32(gate[i]), u = to_f32(up[i]), d = to_f32(dout[i]);
    const float sig = 1.0f / (1.0f + expf(-g));
    dup[i] = from_f32<__nv_bfloat16>(d * g * sig);
    dgate[i] = from_f32<__nv_bfloat16>(d * u * sig * (1.0f + g * (1.0f - sig)));
  }
}

// Enough blocks for every element up to a cap (grid-stride beyond it).
unsigned elementwise_blocks(int64_t n) {
  return unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, 65536));
}

}  // namespace

void launch_swiglu(const __nv_bfloat16* gate, const __nv_bfloat16* up, __nv_bfloat16* out, int64_t n,
                   cudaStream_t stream) {
  BRISK_ASSERT(n >= 0, "swiglu: ", n, " elements");
  if (n == 0) return;
  swiglu_kernel<<<elementwise_blocks(n), kThreads, 0, stream>>>(gate, up, out, n);
  check_launch("swiglu_kernel");
}

void launch_swiglu_backward(const __nv_bfloat16* gate, const __nv_bfloat16* up, const __nv_bfloat16* dout,
                            __nv_bfloat16* dgate, __nv_bfloat16* dup, int64_t n, cudaStream_t stream) {
  BRISK_ASSERT(n >= 0, "swiglu_backward: ", n, " elements");
  if (n == 0) return;
  swiglu_backward_kernel<<<elementwise_blocks(n), kThreads, 0, stream>>>(gate, up, dout, dgate, dup, n);
  check_launch("swiglu_backward_kernel");
}

}  // namespace brisk::cuda
