// Small element-wise kernels the training step needs between the big ones: LoRA dropout
// (counter-based masks, regenerated in backward), f32 -> bf16 copies of master weights,
// reductions for the loss and the gradient norm, and random initialisation for benchmarks.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace brisk::cuda {

// out = x * mask / (1 - p), mask[i] = hash(seed, i) >= p: a pure function of (seed, i), so the
// backward pass regenerates it. x, out [n] bf16 (out may alias x).
void launch_dropout(const __nv_bfloat16* x, __nv_bfloat16* out, int64_t n, float p, uint64_t seed, cudaStream_t s);
// acc += t * mask / (1 - p) with the mask of launch_dropout(seed). acc, t [n] bf16.
void launch_add_dropout(__nv_bfloat16* acc, const __nv_bfloat16* t, int64_t n, float p, uint64_t seed,
                        cudaStream_t s);
// out[i] = float(x[i]) (exact).
void launch_bf16_to_f32(const __nv_bfloat16* x, float* out, int64_t n, cudaStream_t s);
// out[i] = bf16(x[i]).
void launch_f32_to_bf16(const float* x, __nv_bfloat16* out, int64_t n, cudaStream_t s);
// out[j] += sum over rows i of x[i, j] (the bias gradient of a linear layer: column sums of dy).
// x [rows, cols] bf16, out [cols] f32. Each column is summed by one thread in row order, in fp32:
// deterministic.
void launch_column_sums_add(const __nv_bfloat16* x, int64_t rows, int64_t cols, float* out, cudaStream_t s);
// x[i] *= a.
void launch_scale_f32(float* x, int64_t n, float a, cudaStream_t s);
// Partial sums (one per block, at most sum_partials_max() of them) of x[i] or x[i]^2 (squares),
// into partial[0 .. blocks); returns the number of partials written. Sum them on the host in
// double (deterministic).
int launch_partial_sums(const float* x, int64_t n, bool squares, float* partial, cudaStream_t s);
constexpr int sum_partials_max() { return 1024; }
// x[i] = bf16(uniform(-a, a)) from a counter-based hash of (seed, i): benchmark weights made on
// the GPU instead of copied from the host.
void launch_fill_uniform_bf16(__nv_bfloat16* x, int64_t n, float a, uint64_t seed, cudaStream_t s);
void launch_fill_f32(float* x, int64_t n, float v, cudaStream_t s);

}  // namespace brisk::cuda
