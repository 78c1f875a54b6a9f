// Cross-entropy: one block of 1024 threads per row, three sweeps over the row (max; sum of
// exp(l - max); write the gradient), each strided across the block so reads are coalesced. The
// row (at most 1 MiB for V = 262144 in f32) stays in L2 between the sweeps.
//
// In place: every logit the kernel reads is read before the block's reductions finish, except
// in the last sweep, where each thread reads the element it is about to overwrite. The target
// logit is read before the first reduction.
#include <cmath>

#include "backend/cuda/cross_entropy.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int32_t kIgnoreLabel = -100;

template <typename T>
__global__ void cross_entropy_kernel(const T* logits, const int32_t* labels, float* row_loss, T* dlogits, int64_t V,
                                     float grad_scale) {
  const int64_t row = blockIdx.x;
  const T* l = logits + row * V;
  T* d = dlogits + row * V;
  const int32_t label = labels[row];
  if (label == kIgnoreLabel) {
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) d[j] = from_f32<T>(0.0f);
    if (threadIdx.x == 0) row_loss[row] = 0.0f;
    return;
  }
  if (label < 0 || label >= V) {  // validated on the host (check_labels); never index with it
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) d[j] = from_f32<T>(NAN);
    if (threadIdx.x == 0) row_loss[row] = NAN;
    return;
  }
  const float target = to_f32(l[label]);

  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, to_f32(l[j]));
  mx = block_max(mx);

  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) sum += expf(to_f32(l[j]) - mx);
  sum = block_sum(sum);

  const float inv = 1.0f / sum;
  if (threadIdx.x == 0) row_loss[row] = logf(sum) + mx - target;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    const float p = expf(to_f32(l[j]) - mx) * inv;
    // p - 1 for the label, computed as one expression (no separate fp32 cancellation step).
    d[j] = from_f32<T>(grad_scale * (j == label ? p - 1.0f : p));
  }
}

template <typename T>
void launch(const T* logits, const int32_t* labels, float* row_loss, T* dlogits, int64_t n, int64_t V,
            float grad_scale, cudaStream_t stream) {
  BRISK_ASSERT(n >= 0 && n <= INT32_MAX && V > 0, "cross_entropy: ", n, " rows of ", V);
  if (n == 0) return;
  cross_entropy_kernel<T><<<unsigned(n), kThreads, 0, stream>>>(logits, labels, row_loss, dlogits, V, grad_scale);
  check_launch("cross_entropy_kernel");
}

}  // namespace

void check_labels(const int32_t* host_labels, int64_t n, int64_t V) {
  for (int64_t i = 0; i < n; ++i)
    BRISK_CHECK(host_labels[i] == kIgnoreLabel || (host_labels[i] >= 0 && host_labels[i] < V), "cross_entropy: label ",
                host_labels[i], " of row ", i, " is out of range for vocabulary size ", V,
                " (-100 marks an ignored row)");
}

void launch_cross_entropy(const float* logits, const int32_t* labels, float* row_loss, float* dlogits, int64_t n,
                          int64_t V, float grad_scale, cudaStream_t stream) {
  launch(logits, labels, row_loss, dlogits, n, V, grad_scale, stream);
}

void launch_cross_entropy(const __nv_bfloat16* logits, const int32_t* labels, float* row_loss,
                          __nv_bfloat16* dlogits, int64_t n, int64_t V, float grad_scale, cudaStream_t stream) {
  launch(logits, labels, row_loss, dlogits, n, V, grad_scale, stream);
}

}  // namespace brisk::cuda
