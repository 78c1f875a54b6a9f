// Memory-bound matrix-vector products for decoding: y = alpha * x W^T (+ bias) (+ y) for a few
// rows of x (m = 1..8), W [n, k] bf16 row-major (the model's nn.Linear layout), fp32 accumulation.
//
// At batch 1..8 a linear layer reads every weight once and does ~m FLOPs per 2 bytes: the time is
// the bytes of W over the memory bandwidth. cuBLASLt's kernels are tuned for compute-bound tiles
// and reach about half of that bound here; this kernel streams W with 16-byte loads, one warp per
// output row, and keeps x in shared memory, so it runs near the bandwidth limit.
//
// Requirements (gemv_supported() checks them; callers fall back to GemmEngine otherwise): m in
// 1..8, k a positive multiple of 8, W and x 16-byte aligned (so every row of W and x, k * 2 bytes
// apart, is too). y is [m, n] packed; bias [n] bf16 or null; alpha scales only the product.
// Device pointers, asynchronous on `stream`, no allocation and no host synchronisation: safe inside
// CUDA graph capture.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace brisk::cuda {

constexpr int kGemvMaxRows = 8;

bool gemv_supported(int64_t m, int64_t k, const void* w, const void* x);

// y[r, j] = alpha * sum_p x[r, p] W[j, p] + bias[j] + (accumulate ? y[r, j] : 0), rounded once.
void launch_gemv(const __nv_bfloat16* w, const __nv_bfloat16* x, __nv_bfloat16* y, int m, int64_t n, int64_t k,
                 const __nv_bfloat16* bias, bool accumulate, cudaStream_t stream, float alpha = 1.0f);
void launch_gemv(const __nv_bfloat16* w, const __nv_bfloat16* x, float* y, int m, int64_t n, int64_t k,
                 const __nv_bfloat16* bias, bool accumulate, cudaStream_t stream, float alpha = 1.0f);

}  // namespace brisk::cuda
