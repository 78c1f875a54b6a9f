// SwiGLU on the GPU, bf16 in and out, fp32 math. Same semantics as ops::swiglu /
// ops::swiglu_backward (backend/ops.h). Device pointers, asynchronous on `stream`, checked.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace brisk::cuda {

// out = silu(gate) * up over n elements (out may alias gate or up).
void launch_swiglu(const __nv_bfloat16* gate, const __nv_bfloat16* up, __nv_bfloat16* out, int64_t n,
                   cudaStream_t stream);

// dgate, dup (overwritten) from dout; each element's inputs are read before its outputs are
// written, so dgate/dup may alias gate/up.
void launch_swiglu_backward(const __nv_bfloat16* gate, const __nv_bfloat16* up, const __nv_bfloat16* dout,
                            __nv_bfloat16* dgate, __nv_bfloat16* dup, int64_t n, cudaStream_t stream);

}  // namespace brisk::cuda
