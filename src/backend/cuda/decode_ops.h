// Small kernels of the inference forward pass (infer/cuda/cuda_decoder.cpp) that keep the
// residual stream in f32 while the matrices and the other activations are bf16: an f32
// embedding lookup, an RMSNorm from f32 rows (optionally gathered) to bf16, and bias adds.
// Same semantics as the CPU ops (backend/ops.h). Device pointers, asynchronous, checked.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace brisk::cuda {

// out[i, :] = f32(table[ids[i], :]). table [V, H] bf16, out [n, H] f32. A bad id (the host
// checks ids first) writes a NaN row, never reads out of bounds.
void launch_embedding_f32(const __nv_bfloat16* table, const int32_t* ids, float* out, int64_t n, int64_t V, int H,
                          cudaStream_t stream);

// out[r, :] = rmsnorm(x[src_row, :]) * w with src_row = rows ? rows[r] : r. x f32 [*, H],
// w f32 [H], out bf16 [n, H]. The row indices are read on the device (graph-friendly).
void launch_rmsnorm_f32_rows(const float* x, const int32_t* rows, const float* w, __nv_bfloat16* out, int64_t n,
                             int H, float eps, cudaStream_t stream);

// y[r, :] += bias over n rows of width N (bias bf16 [N]); y bf16 or f32.
void launch_add_bias(__nv_bfloat16* y, const __nv_bfloat16* bias, int64_t n, int64_t N, cudaStream_t stream);
void launch_add_bias(float* y, const __nv_bfloat16* bias, int64_t n, int64_t N, cudaStream_t stream);

}  // namespace brisk::cuda
