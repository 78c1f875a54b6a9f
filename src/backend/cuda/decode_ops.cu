// Inference helper kernels (decode_ops.h): one block per row, fp32 math, correctly rounded sqrt
// and division as rmsnorm.cu (so results match the CPU's rmsnorm to within one bf16 rounding).
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/decode_ops.h"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void embedding_f32_kernel(const __nv_bfloat16* table, const int32_t* ids, float* out, int64_t V, int H) {
  const int64_t i = blockIdx.x;
  const int64_t id = ids[i];
  float* o = out + i * H;
  const bool ok = id >= 0 && id < V;
  for (int k = threadIdx.x; k < H; k += blockDim.x) o[k] = ok ? to_f32(table[id * H + k]) : NAN;
}

__global__ void rmsnorm_f32_rows_kernel(const float* x, const int32_t* rows, const float* w, __nv_bfloat16* out,
                                        int H, float eps) {
  const int64_t r = blockIdx.x;
  const float* xr = x + (rows ? int64_t(rows[r]) : r) * H;
  float ss = 0.0f;
  for (int k = threadIdx.x; k < H; k += blockDim.x) ss += xr[k] * xr[k];
  ss = block_sum(ss);
  const float inv = 1.0f / sqrtf(ss / float(H) + eps);
  for (int k = threadIdx.x; k < H; k += blockDim.x) out[r * H + k] = from_f32<__nv_bfloat16>((xr[k] * inv) * w[k]);
}

template <typename T> __global__ void add_bias_kernel(T* y, const __nv_bfloat16* bias, int64_t N) {
  T* yr = y + int64_t(blockIdx.x) * N;
  for (int64_t k = threadIdx.x; k < N; k += blockDim.x) yr[k] = from_f32<T>(to_f32(yr[k]) + to_f32(bias[k]));
}

template <typename T> void add_bias(T* y, const __nv_bfloat16* bias, int64_t n, int64_t N, cudaStream_t stream) {
  BRISK_ASSERT(n >= 0 && n <= INT32_MAX && N > 0, "add_bias: ", n, " rows of ", N);
  if (n == 0) return;
  add_bias_kernel<T><<<unsigned(n), kThreads, 0, stream>>>(y, bias, N);
  check_launch("add_bias_kernel");
}

}  // namespace

void launch_embedding_f32(const __nv_bfloat16* table, const int32_t* ids, float* out, int64_t n, int64_t V, int H,
                          cudaStream_t stream) {
  BRISK_ASSERT(n >= 0 && n <= INT32_MAX && H > 0 && V > 0, "embedding_f32: ", n, " ids, table [", V, ", ", H, "]");
  if (n == 0) return;
  embedding_f32_kernel<<<unsigned(n), kThreads, 0, stream>>>(table, ids, out, V, H);
  check_launch("embedding_f32_kernel");
}

void launch_rmsnorm_f32_rows(const float* x, const int32_t* rows, const float* w, __nv_bfloat16* out, int64_t n,
                             int H, float eps, cudaStream_t stream) {
  BRISK_ASSERT(n >= 0 && n <= INT32_MAX && H > 0, "rmsnorm_f32_rows: ", n, " rows of ", H);
  if (n == 0) return;
  rmsnorm_f32_rows_kernel<<<unsigned(n), kThreads, 0, stream>>>(x, rows, w, out, H, eps);
  check_launch("rmsnorm_f32_rows_kernel");
}

void launch_add_bias(__nv_bfloat16* y, const __nv_bfloat16* bias, int64_t n, int64_t N, cudaStream_t stream) {
  add_bias(y, bias, n, N, stream);
}
void launch_add_bias(float* y, const __nv_bfloat16* bias, int64_t n, int64_t N, cudaStream_t stream) {
  add_bias(y, bias, n, N, stream);
}

}  // namespace brisk::cuda
