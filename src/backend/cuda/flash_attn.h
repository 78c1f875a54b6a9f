// Flash attention for training on the GPU (FlashAttention-2 style): the semantics of
// ops::attention_train_forward / attention_train_backward (backend/ops.h) over a packed batch of
// variable-length segments, without any T x T matrix in memory. bf16 storage, fp32 accumulation,
// bf16 tensor-core products. All pointers are device pointers; launches are asynchronous on
// `stream` and checked. See docs/CUDA.md ("Flash attention") for the tiling.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace brisk::cuda {

struct FlashAttnShape {
  int64_t tokens = 0;           // T, packed over all segments
  int n_seg = 0, max_seqlen = 0;  // segments, and the longest one (host-known: sizes the grid)
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;  // head_dim 16, 32, 64 or 128
  // Row strides of q, k, v in elements; 0 = packed (heads * head_dim). Lets q/k/v be column
  // slices of one fused [T, (nh + 2 nkv) * hd] QKV buffer. Multiples of 8 (16-byte rows).
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;
  float scale = 1.0f;  // multiplies q.k
  int window = 0;      // sliding window (keys with pos > query pos - window); <= 0: unlimited
};

// Which kernels run. Mma (the default): register-level mma.sync kernels in the FA2 layout
// (flash_attn_mma.cu; 128-query forward tiles, so rows past max_seqlen are NaN from max_seqlen
// rounded up to 128); on the H100 forward 193 TFLOP/s, forward+backward 116 at hd 128 (the WMMA
// kernels: 50 / 55; docs/BENCHMARKS.md). TensorCores: the first WMMA kernels, through shared
// memory. Scalar: plain fp32 FMAs over the same tiles, masks and online softmax (the
// obviously-correct twin the tests compare with). All three pass the same parity sweep.
enum class FlashAttnImpl { TensorCores, Scalar, Mma };

// Throws brisk::Error (one line, naming the value) for a shape the kernels cannot run: head_dim
// not 16/32/64/128, heads not a multiple of kv heads, strides too small or not multiples of 8,
// a segment count or length the grid cannot hold. The launchers call it first.
void check_flash_attn_shape(const FlashAttnShape& s);

// out [T, nh, hd] packed bf16; lse [T, nh] f32 = natural-log log-sum-exp of each query's scaled
// scores. cu_seqlens: device int32 [n_seg + 1], 0 = cu_seqlens[0] <= ... <= cu_seqlens[n_seg] = T,
// no segment longer than max_seqlen (rows past max_seqlen are written as NaN, never skipped).
void launch_flash_attn_forward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                               const int32_t* cu_seqlens, const FlashAttnShape& s, __nv_bfloat16* out, float* lse,
                               cudaStream_t stream, FlashAttnImpl impl = FlashAttnImpl::Mma);

// Prefill against a KV cache (inference; the Mma kernels): segment i's queries are q rows
// cu_seqlens[i] .. cu_seqlens[i + 1] - 1 and they are the LAST q_len_i = cu_seqlens[i + 1] -
// cu_seqlens[i] positions of a key sequence of kv_len[i] >= q_len_i rows starting at row
// kv_start[i] of k and v (rows k_stride / v_stride apart, e.g. one slot of a [slot][pos][kv_head]
// [hd] cache). Query r of the segment is at position kv_len - q_len + r and sees keys up to it
// (within the window). kv_start, kv_len: device int32 [n_seg]; s.tokens / max_seqlen / n_seg
// describe the queries; the shape's k_stride / v_stride are the cache's row strides.
void launch_flash_attn_prefix_forward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                      const int32_t* cu_seqlens, const int32_t* kv_start, const int32_t* kv_len,
                                      const FlashAttnShape& s, __nv_bfloat16* out, float* lse, cudaStream_t stream);

// Scratch launch_flash_attn_backward needs: D = rowsum(dout * out) and the f32 dq accumulator.
size_t flash_attn_backward_scratch_bytes(const FlashAttnShape& s);

// dq [T, nh, hd], dk, dv [T, nkv, hd]: packed bf16, overwritten. out, dout [T, nh, hd] packed;
// lse from the forward. dk, dv are summed over the query heads of each GQA group in a fixed
// order (deterministic); dq is summed with f32 atomics over key tiles (order may vary by ulps).
void launch_flash_attn_backward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                const __nv_bfloat16* out, const float* lse, const __nv_bfloat16* dout,
                                const int32_t* cu_seqlens, const FlashAttnShape& s, __nv_bfloat16* dq,
                                __nv_bfloat16* dk, __nv_bfloat16* dv, void* scratch, cudaStream_t stream,
                                FlashAttnImpl impl = FlashAttnImpl::Mma);

}  // namespace brisk::cuda
