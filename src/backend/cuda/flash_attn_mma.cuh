// Internal to flash_attn.cu / flash_attn_mma.cu: the FlashAttnImpl::Mma kernels (register-level
// mma.sync m16n8k16 bf16, ldmatrix, cp.async double buffering). flash_attn.cu's launchers check
// the shape, resolve the row strides and call these; anything they do not implement (see
// backward_implemented) falls back to the TensorCores kernels there.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "backend/cuda/flash_attn.h"

namespace brisk::cuda::flash_mma {

// Query rows per forward CTA (8 warps x 16 rows). Rows of a segment past max_seqlen rounded up
// to this are written as NaN (the TensorCores kernels round to 64).
constexpr int kFwdRows = 128;

// `s` has checked shape and resolved (non-zero) strides; pointers 16-byte aligned. kv_start /
// kv_len (device [n_seg], both or neither): the keys of segment i are kv_len[i] rows from row
// kv_start[i] of k/v and its queries are their last positions (launch_flash_attn_prefix_forward).
void run_forward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const int32_t* cu_seqlens,
                 const FlashAttnShape& s, __nv_bfloat16* out, float* lse, cudaStream_t stream,
                 const int32_t* kv_start = nullptr, const int32_t* kv_len = nullptr);

// Whether run_backward handles `s` (today: every checked shape); where it returns false the
// launcher runs the TensorCores backward instead, so a gap here is slower, never wrong.
bool backward_implemented(const FlashAttnShape& s);

// dK, dV written (bf16); dQ added (f32 atomics) into dq_acc, which the caller zeroed; delta =
// rowsum(dout * out) precomputed by the caller.
void run_backward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const __nv_bfloat16* dout,
                  const float* lse, const float* delta, const int32_t* cu_seqlens, const FlashAttnShape& s,
                  float* dq_acc, __nv_bfloat16* dk, __nv_bfloat16* dv, cudaStream_t stream);

}  // namespace brisk::cuda::flash_mma
