// Embedding gather and scatter-add: one block per id, threads across the row.
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/embedding.h"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void embedding_kernel(const __nv_bfloat16* table, const int32_t* ids, __nv_bfloat16* out, int64_t V,
                                 int H) {
  const int64_t i = blockIdx.x;
  const int32_t id = ids[i];
  __nv_bfloat16* orow = out + i * H;
  if (id < 0 || id >= V) {  // validated on the host; never read out of bounds regardless
    for (int k = threadIdx.x; k < H; k += blockDim.x) orow[k] = from_f32<__nv_bfloat16>(NAN);
    return;
  }
  const __nv_bfloat16* src = table + int64_t(id) * H;
  for (int k = threadIdx.x; k < H; k += blockDim.x) orow[k] = src[k];
}

__global__ void embedding_backward_kernel(const int32_t* ids, const __nv_bfloat16* dout, float* dtable, int64_t V,
                                          int H) {
  const int64_t i = blockIdx.x;
  const int32_t id = ids[i];
  if (id < 0 || id >= V) return;
  const __nv_bfloat16* src = dout + i * H;
  float* dst = dtable + int64_t(id) * H;
  for (int k = threadIdx.x; k < H; k += blockDim.x) atomicAdd(dst + k, to_f32(src[k]));
}

}  // namespace

void check_token_ids(const int32_t* host_ids, int64_t n, int64_t V) {
  for (int64_t i = 0; i < n; ++i)
    BRISK_CHECK(host_ids[i] >= 0 && host_ids[i] < V, "token id ", host_ids[i], " (position ", i,
                ") is out of range for the embedding table of vocabulary size ", V);
}

void launch_embedding(const __nv_bfloat16* table, const int32_t* ids, __nv_bfloat16* out, int64_t n, int64_t V,
                      int H, cudaStream_t stream) {
  BRISK_ASSERT(n >= 0 && n <= INT32_MAX && V > 0 && H > 0, "embedding: ", n, " ids, table [", V, ", ", H, "]");
  if (n == 0) return;
  embedding_kernel<<<unsigned(n), kThreads, 0, stream>>>(table, ids, out, V, H);
  check_launch("embedding_kernel");
}

void launch_embedding_backward(const int32_t* ids, const __nv_bfloat16* dout, float* dtable, int64_t n, int64_t V,
                               int H, cudaStream_t stream) {
  BRISK_ASSERT(n >= 0 && n <= INT32_MAX && V > 0 && H > 0, "embedding_backward: ", n, " ids, table [", V, ", ", H,
               "]");
  if (n == 0) return;
  embedding_backward_kernel<<<unsigned(n), kThreads, 0, stream>>>(ids, dout, dtable, V, H);
  check_launch("embedding_backward_kernel");
}

}  // namespace brisk::cuda
