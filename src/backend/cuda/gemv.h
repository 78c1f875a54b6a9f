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
// CUDA graph capture. Launched with programmatic dependent launch (pdl.cuh): a GEMV prefetches
// its first weight lines while the previous kernel finishes.
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

// Fused single-token GEMVs for a decode step: each block computes the GEMV's input row from the
// previous op's output while staging it (the same arithmetic, bit for bit, as the unfused
// kernels), which removes a launch per fused op. Block 0 also writes that input row to the
// optional `*_out` (a LoRA path reads it). Requirements (gemv_fused_supported): k a multiple of
// 8 and at most 16384 (the row is staged whole), 16-byte aligned operands.
bool gemv_fused_supported(int64_t k, const void* w);

// y[j] = sum_p xn[p] W[j, p] + bias[j], xn = launch_rmsnorm_f32_rows(x row `*row` (0 if row is
// null), norm_w, eps). y bf16, or f32 when y_f32. No accumulate (the residual stays in x).
void launch_gemv_rmsnorm(const __nv_bfloat16* w, const float* x, const int32_t* row, const float* norm_w, float eps,
                         __nv_bfloat16* xn_out, void* y, bool y_f32, int64_t n, int64_t k,
                         const __nv_bfloat16* bias, cudaStream_t stream);

// y[j] (+)= sum_p act[p] W[j, p] with act = launch_swiglu(gate, up): the MLP's down projection
// straight from the gate/up GEMV's output.
void launch_gemv_swiglu(const __nv_bfloat16* w, const __nv_bfloat16* gate, const __nv_bfloat16* up,
                        __nv_bfloat16* act_out, float* y, int64_t n, int64_t k, bool accumulate,
                        cudaStream_t stream);

}  // namespace brisk::cuda
