#include "backend/cuda/elementwise.h"

#include <cuda_bf16.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) { return unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8)); }

// splitmix64 of (seed, i): uniform in [0, 1) with 24 bits.
__device__ __forceinline__ float hash_uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return float(z >> 40) * (1.0f / 16777216.0f);
}

__global__ void dropout_kernel(const __nv_bfloat16* x, __nv_bfloat16* out, int64_t n, float p, float keep,
                               uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(hash_uniform(seed, uint64_t(i)) < p ? 0.0f : __bfloat162float(x[i]) * keep);
}

__global__ void add_dropout_kernel(__nv_bfloat16* acc, const __nv_bfloat16* t, int64_t n, float p, float keep,
                                   uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float m = hash_uniform(seed, uint64_t(i)) < p ? 0.0f : keep;
    acc[i] = __float2bfloat16_rn(__bfloat162float(acc[i]) + __bfloat162float(t[i]) * m);
  }
}

__global__ void bf16_to_f32_kernel(const __nv_bfloat16* x, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __bfloat162float(x[i]);
}

__global__ void f32_to_bf16_kernel(const float* x, __nv_bfloat16* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(x[i]);
}

__global__ void column_sums_add_kernel(const __nv_bfloat16* x, int64_t rows, int64_t cols, float* out) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  float s = 0.0f;
  for (int64_t i = 0; i < rows; ++i) s += __bfloat162float(x[i * cols + j]);  // a warp reads 32 adjacent columns
  out[j] += s;
}

__global__ void scale_kernel(float* x, int64_t n, float a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] *= a;
}

__global__ void partial_sums_kernel(const float* x, int64_t n, bool squares, float* partial) {
  float s = 0.0f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    s += squares ? x[i] * x[i] : x[i];
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void fill_uniform_kernel(__nv_bfloat16* x, int64_t n, float a, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = __float2bfloat16_rn((2.0f * hash_uniform(seed, uint64_t(i)) - 1.0f) * a);
}

__global__ void fill_f32_kernel(float* x, int64_t n, float v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = v;
}

}  // namespace

void launch_dropout(const __nv_bfloat16* x, __nv_bfloat16* out, int64_t n, float p, uint64_t seed, cudaStream_t s) {
  BRISK_ASSERT(p >= 0.0f && p < 1.0f);
  if (n == 0) return;
  dropout_kernel<<<grid_for(n), kThreads, 0, s>>>(x, out, n, p, 1.0f / (1.0f - p), seed);
  check_launch("dropout_kernel");
}

void launch_add_dropout(__nv_bfloat16* acc, const __nv_bfloat16* t, int64_t n, float p, uint64_t seed,
                        cudaStream_t s) {
  BRISK_ASSERT(p >= 0.0f && p < 1.0f);
  if (n == 0) return;
  add_dropout_kernel<<<grid_for(n), kThreads, 0, s>>>(acc, t, n, p, 1.0f / (1.0f - p), seed);
  check_launch("add_dropout_kernel");
}

void launch_bf16_to_f32(const __nv_bfloat16* x, float* out, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  bf16_to_f32_kernel<<<grid_for(n), kThreads, 0, s>>>(x, out, n);
  check_launch("bf16_to_f32_kernel");
}

void launch_f32_to_bf16(const float* x, __nv_bfloat16* out, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  f32_to_bf16_kernel<<<grid_for(n), kThreads, 0, s>>>(x, out, n);
  check_launch("f32_to_bf16_kernel");
}

void launch_column_sums_add(const __nv_bfloat16* x, int64_t rows, int64_t cols, float* out, cudaStream_t s) {
  if (cols == 0) return;
  column_sums_add_kernel<<<unsigned((cols + kThreads - 1) / kThreads), kThreads, 0, s>>>(x, rows, cols, out);
  check_launch("column_sums_add_kernel");
}

void launch_scale_f32(float* x, int64_t n, float a, cudaStream_t s) {
  if (n == 0) return;
  scale_kernel<<<grid_for(n), kThreads, 0, s>>>(x, n, a);
  check_launch("scale_kernel");
}

int launch_partial_sums(const float* x, int64_t n, bool squares, float* partial, cudaStream_t s) {
  int blocks = int(std::max<int64_t>(1, std::min<int64_t>(sum_partials_max(), (n + kThreads - 1) / kThreads)));
  partial_sums_kernel<<<unsigned(blocks), kThreads, 0, s>>>(x, n, squares, partial);
  check_launch("partial_sums_kernel");
  return blocks;
}

void launch_fill_uniform_bf16(__nv_bfloat16* x, int64_t n, float a, uint64_t seed, cudaStream_t s) {
  if (n == 0) return;
  fill_uniform_kernel<<<grid_for(n), kThreads, 0, s>>>(x, n, a, seed);
  check_launch("fill_uniform_kernel");
}

void launch_fill_f32(float* x, int64_t n, float v, cudaStream_t s) {
  if (n == 0) return;
  fill_f32_kernel<<<grid_for(n), kThreads, 0, s>>>(x, n, v);
  check_launch("fill_f32_kernel");
}

}  // namespace brisk::cuda
