// Token embedding on the GPU: bf16 table, int32 ids, f32 gradient accumulation. Same semantics
// as ops::embedding / ops::embedding_backward (backend/ops.h). Device pointers, asynchronous on
// `stream`, checked.
//
// Ids are user input (a prompt, a dataset row): callers validate them on the host with
// check_token_ids before uploading, as the CPU op does. A kernel cannot throw; as a last guard
// an out-of-range id never reads or writes out of bounds: forward writes a NaN row (so the bug
// surfaces as a NaN loss), backward skips it.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace brisk::cuda {

// Throws brisk::Error naming the first id outside [0, V) and its position. Host pointer.
void check_token_ids(const int32_t* host_ids, int64_t n, int64_t V);

// out[i, :] = table[ids[i], :]. table [V, H], out [n, H].
void launch_embedding(const __nv_bfloat16* table, const int32_t* ids, __nv_bfloat16* out, int64_t n, int64_t V,
                      int H, cudaStream_t stream);

// dtable[ids[i], :] += dout[i, :] (f32 atomics: repeated ids add up; the order of the additions,
// and so the last bits, may vary between runs). dtable [V, H] f32, dout [n, H] bf16.
void launch_embedding_backward(const int32_t* ids, const __nv_bfloat16* dout, float* dtable, int64_t n, int64_t V,
                               int H, cudaStream_t stream);

}  // namespace brisk::cuda
