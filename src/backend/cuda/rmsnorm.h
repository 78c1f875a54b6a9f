// RMSNorm on the GPU: bf16 activations, f32 (or bf16) weights, fp32 accumulation. Same
// semantics as ops::rmsnorm / ops::rmsnorm_backward (backend/ops.h). All pointers are device
// pointers; launches are asynchronous on `stream` and checked.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace brisk::cuda {

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * (w + offset). x, out [n, H] (out may alias x).
void launch_rmsnorm(const __nv_bfloat16* x, const float* w, __nv_bfloat16* out, int64_t n, int H, float eps,
                    float offset, cudaStream_t stream);
void launch_rmsnorm(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* out, int64_t n, int H, float eps,
                    float offset, cudaStream_t stream);

// Bytes of f32 scratch launch_rmsnorm_backward needs for n rows of width H (per-block partial
// sums of dw, reduced by a second kernel in a fixed order: the result is deterministic).
size_t rmsnorm_backward_scratch_bytes(int64_t n, int H);

// dx = d/dx (overwritten, [n, H] bf16); when dw is not null, dw (+)= sum over rows of
// dy * x * rsqrt(mean(x^2) + eps) in f32 ([H]; += when accumulate_dw, else overwritten).
// dx_residual (optional, [n, H], may alias dx): added to dx, so the residual stream's gradient
// and the norm's backward fuse into one pass.
// scratch: rmsnorm_backward_scratch_bytes(n, H) bytes (may be null when dw is null).
void launch_rmsnorm_backward(const __nv_bfloat16* x, const float* w, const __nv_bfloat16* dy, __nv_bfloat16* dx,
                             float* dw, bool accumulate_dw, float* scratch, int64_t n, int H, float eps, float offset,
                             cudaStream_t stream, const __nv_bfloat16* dx_residual = nullptr);

}  // namespace brisk::cuda
