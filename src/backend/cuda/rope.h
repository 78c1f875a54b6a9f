// Rotary position embedding on the GPU, in place on bf16 [n, heads, head_dim], HF rotate_half
// layout. Same semantics as ops::rope / ops::rope_backward (backend/ops.h): element i pairs with
// i + n_freq (dims past 2 * n_freq untouched), angle = float(pos) * inv_freq[i] in fp32, cos/sin
// in fp32 times mscale. Device pointers (positions int32 [n], inv_freq f32 [n_freq]),
// asynchronous on `stream`, checked.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace brisk::cuda {

void launch_rope(__nv_bfloat16* x, const int32_t* positions, const float* inv_freq, int64_t n, int heads,
                 int head_dim, int n_freq, float mscale, cudaStream_t stream);

// The transpose rotation (the gradient of rope), in place on dx.
void launch_rope_backward(__nv_bfloat16* dx, const int32_t* positions, const float* inv_freq, int64_t n, int heads,
                          int head_dim, int n_freq, float mscale, cudaStream_t stream);

}  // namespace brisk::cuda
