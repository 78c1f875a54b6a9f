// Fused softmax cross-entropy on the GPU over a chunk of logits [n, V] (f32 or bf16) with int32
// labels (-100 = ignored row). Same semantics as ops::cross_entropy (backend/ops.h), but the
// per-row losses are written (f32, natural log; 0 on ignored rows) instead of summed, so a
// caller can sum them in any order or keep them per token. dlogits = grad_scale *
// (softmax - onehot(label)) on non-ignored rows, 0 on ignored ones; dlogits may be the logits
// buffer itself (in place). Device pointers, asynchronous on `stream`, checked.
//
// Labels are user input (dataset rows): callers validate them on the host with check_labels
// before uploading. A kernel cannot throw; as a last guard a row with a label outside
// [0, V) and not -100 gets a NaN loss and NaN gradients (never an out-of-bounds access).
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace brisk::cuda {

// Throws brisk::Error naming the first label outside [0, V) that is not -100, and its row.
void check_labels(const int32_t* host_labels, int64_t n, int64_t V);

void launch_cross_entropy(const float* logits, const int32_t* labels, float* row_loss, float* dlogits, int64_t n,
                          int64_t V, float grad_scale, cudaStream_t stream);
void launch_cross_entropy(const __nv_bfloat16* logits, const int32_t* labels, float* row_loss,
                          __nv_bfloat16* dlogits, int64_t n, int64_t V, float grad_scale, cudaStream_t stream);

}  // namespace brisk::cuda
