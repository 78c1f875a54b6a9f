// RoPE: one block per token. The token's cos/sin table is computed once into shared memory
// (sincosf: full fp32 accuracy at any angle), then the block rotates every (head, pair).
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/rope.h"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kThreads = 128;

// sign = +1: forward rotation [[c, -s], [s, c]]; sign = -1: its transpose (backward).
__global__ void rope_kernel(__nv_bfloat16* x, const int32_t* positions, const float* inv_freq, int heads,
                            int head_dim, int n_freq, float mscale, float sign) {
  extern __shared__ float cs[];  // cos [n_freq] then sin [n_freq]
  const int64_t t = blockIdx.x;
  const float pos = float(positions[t]);
  for (int i = threadIdx.x; i < n_freq; i += blockDim.x) {
    const float angle = __fmul_rn(pos, inv_freq[i]);  // one fp32 rounding, as transformers
    float s, c;
    sincosf(angle, &s, &c);
    cs[i] = c * mscale;
    cs[n_freq + i] = s * mscale;
  }
  __syncthreads();
  __nv_bfloat16* xt = x + t * int64_t(heads) * head_dim;
  for (int j = threadIdx.x; j < heads * n_freq; j += blockDim.x) {
    const int h = j / n_freq, i = j % n_freq;
    __nv_bfloat16* v = xt + int64_t(h) * head_dim;
    const float c = cs[i], s = sign * cs[n_freq + i];
    const float a = to_f32(v[i]), b = to_f32(v[i + n_freq]);
    v[i] = from_f32<__nv_bfloat16>(a * c - b * s);
    v[i + n_freq] = from_f32<__nv_bfloat16>(b * c + a * s);
  }
}

void launch(__nv_bfloat16* x, const int32_t* positions, const float* inv_freq, int64_t n, int heads, int head_dim,
            int n_freq, float mscale, float sign, cudaStream_t stream, const char* name) {
  BRISK_ASSERT(n >= 0 && n <= INT32_MAX && heads > 0 && n_freq >= 0 && 2 * n_freq <= head_dim, name, ": ", n,
               " tokens, ", heads, " heads of ", head_dim, ", ", n_freq, " frequencies");
  if (n == 0 || n_freq == 0) return;
  const size_t shared = 2 * size_t(n_freq) * sizeof(float);
  BRISK_ASSERT(shared <= 48 * 1024, name, ": ", n_freq, " frequencies exceed the shared-memory table");
  rope_kernel<<<unsigned(n), kThreads, shared, stream>>>(x, positions, inv_freq, heads, head_dim, n_freq, mscale,
                                                         sign);
  check_launch(name);
}

}  // namespace

void launch_rope(__nv_bfloat16* x, const int32_t* positions, const float* inv_freq, int64_t n, int heads,
                 int head_dim, int n_freq, float mscale, cudaStream_t stream) {
  launch(x, positions, inv_freq, n, heads, head_dim, n_freq, mscale, 1.0f, stream, "rope_kernel");
}

void launch_rope_backward(__nv_bfloat16* dx, const int32_t* positions, const float* inv_freq, int64_t n, int heads,
                          int head_dim, int n_freq, float mscale, cudaStream_t stream) {
  launch(dx, positions, inv_freq, n, heads, head_dim, n_freq, mscale, -1.0f, stream, "rope_kernel (backward)");
}

}  // namespace brisk::cuda
