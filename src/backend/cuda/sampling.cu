// Sampling kernels. Greedy: one block per row, each thread keeps its best (value, id), merged
// with "larger value, else lower id". Sampling: a prep kernel (temperature, ids), an optional
// CUB descending radix sort, then one block of 1024 threads that applies the cut-offs as prefix
// lengths of the sorted row and draws. Sums run in double (as the CPU sampler's), over
// contiguous per-thread chunks combined by a block scan, so every survivor's cumulative weight is
// well defined without a second pass.
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cmath>
#include <climits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/sampling.h"
#include "core/arena.h"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kThreads = 1024;

size_t align_up(size_t n) { return (n + kArenaAlign - 1) / kArenaAlign * kArenaAlign; }

// ---- greedy ----------------------------------------------------------------------------------

__device__ __forceinline__ bool better(float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); }

__global__ void argmax_kernel(const float* logits, int64_t vocab, int32_t* out_ids) {
  __shared__ float sv[kWarp];
  __shared__ int si[kWarp];
  const float* row = logits + int64_t(blockIdx.x) * vocab;
  float bv = -INFINITY;
  int bi = INT_MAX;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x)
    if (better(row[i], int(i), bv, bi)) bv = row[i], bi = int(i);
  for (int off = kWarp / 2; off > 0; off /= 2) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, off);
    if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) sv[warp] = bv, si[warp] = bi;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x / kWarp); ++w)
      if (better(sv[w], si[w], bv, bi)) bv = sv[w], bi = si[w];
    // Only NaN everywhere leaves no winner: answer 0, as the CPU's scan does.
    out_ids[blockIdx.x] = bi == INT_MAX ? 0 : bi;
  }
}

// ---- penalties -------------------------------------------------------------------------------

__global__ void penalties_kernel(float* logits, const int32_t* ids, const int32_t* counts, int n, float rep,
                                 float presence, float frequency) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float l = logits[ids[i]];
  if (rep != 1.0f) l = l < 0.0f ? l * rep : l / rep;
  // Explicitly rounded steps (no FMA contraction): the CPU sampler's float arithmetic exactly.
  if (presence != 0.0f || frequency != 0.0f)
    l = __fsub_rn(l, __fadd_rn(presence, __fmul_rn(frequency, float(counts[i]))));
  logits[ids[i]] = l;
}

// ---- sampling --------------------------------------------------------------------------------

__global__ void sample_prep_kernel(const float* logits, int64_t vocab, float temperature, float* keys,
                                   int32_t* ids) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < vocab; i += int64_t(gridDim.x) * blockDim.x) {
    keys[i] = temperature != 1.0f ? logits[i] / temperature : logits[i];
    ids[i] = int32_t(i);
  }
}

template <typename T, typename Op> __device__ T block_reduce_t(T v, Op op) {
  __shared__ T partial[kWarp];
  __shared__ T result;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, n_warps = blockDim.x / kWarp;
  for (int off = kWarp / 2; off > 0; off /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, off));
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    T r = partial[0];
    for (int w = 1; w < n_warps; ++w) r = op(r, partial[w]);
    result = r;
  }
  __syncthreads();
  const T r = result;
  __syncthreads();
  return r;
}

struct SumI {
  __device__ long long operator()(long long a, long long b) const { return a + b; }
};
struct MinI {
  __device__ long long operator()(long long a, long long b) const { return a < b ? a : b; }
};
struct MaxI {
  __device__ long long operator()(long long a, long long b) const { return a > b ? a : b; }
};

// Exclusive prefix sum of v over the block's threads, in thread order; *total gets the sum.
__device__ double block_exclusive_scan(double v, double* total) {
  __shared__ double buf[kThreads];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int off = 1; off < int(blockDim.x); off *= 2) {
    const double add = threadIdx.x >= unsigned(off) ? buf[threadIdx.x - off] : 0.0;
    __syncthreads();
    buf[threadIdx.x] += add;
    __syncthreads();
  }
  const double incl = buf[threadIdx.x];
  *total = buf[blockDim.x - 1];
  __syncthreads();
  return incl - v;
}

// Weight of a survivor: e^(key - max) in fp32 (as the CPU's softmax), widened to double.
__device__ __forceinline__ double weight(const float* keys, int64_t i, float mx) {
  return double(expf(keys[i] - mx));
}

// keys/ids: the row, sorted descending when `sorted` (then cut-offs apply), else in id order.
__global__ void __launch_bounds__(kThreads)
    select_and_draw_kernel(const float* keys, const int32_t* ids, int64_t vocab, bool sorted, int top_k,
                           float top_p, float min_p, double u, int32_t* out_id) {
  float mx = keys[0];
  if (!sorted) {
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, keys[i]);
    mx = block_max(m);
  }
  int64_t n = vocab;  // survivors: keys[0, n)

  if (sorted && top_k > 0 && top_k < vocab) {
    const float thr = keys[top_k - 1];  // ties with the k-th largest all stay
    long long c = 0;
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) c += keys[i] >= thr;
    n = block_reduce_t<long long>(c, SumI{});
  }

  // Each thread's contiguous chunk of [0, n) and the cumulative weight before it.
  auto chunk_scan = [&](int64_t count, int64_t* lo, int64_t* hi, double* before, double* total) {
    const int64_t per = (count + blockDim.x - 1) / blockDim.x;
    *lo = int64_t(threadIdx.x) * per < count ? int64_t(threadIdx.x) * per : count;
    *hi = *lo + per < count ? *lo + per : count;
    double s = 0.0;
    for (int64_t i = *lo; i < *hi; ++i) s += weight(keys, i, mx);
    *before = block_exclusive_scan(s, total);
  };

  if (sorted && top_p < 1.0f && n > 1) {
    // Drop the tail [j, n) for the smallest j >= 1 whose mass is <= (1 - top_p) of the total.
    int64_t lo, hi;
    double before, total;
    chunk_scan(n, &lo, &hi, &before, &total);
    const double drop = (1.0 - double(top_p)) * total;
    long long first = n;  // j = n: nothing dropped (the empty tail always qualifies)
    double prefix = before;
    for (int64_t j = lo; j < hi; ++j) {
      if (total - prefix <= drop) {
        first = j;
        break;
      }
      prefix += weight(keys, j, mx);
    }
    first = block_reduce_t<long long>(first, MinI{});
    n = first < 1 ? 1 : first;
  }

  if (sorted && min_p > 0.0f && n > 1) {
    // p_i < min_p * p_max  <=>  e^(key_i - max) < min_p (keys[0] is the max).
    long long c = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) c += !(expf(keys[i] - mx) < min_p);
    n = block_reduce_t<long long>(c, SumI{});
  }

  // Draw: the first survivor whose inclusive cumulative weight exceeds u * total.
  int64_t lo, hi;
  double before, total;
  chunk_scan(n, &lo, &hi, &before, &total);
  const double target = u * total;
  long long pick = LLONG_MAX, last_nonzero = -1;
  double acc = before;
  for (int64_t i = lo; i < hi; ++i) {
    const double w = weight(keys, i, mx);
    if (w == 0.0) continue;
    last_nonzero = i;
    acc += w;
    if (target < acc) {
      pick = i;
      break;
    }
  }
  pick = block_reduce_t<long long>(pick, MinI{});
  last_nonzero = block_reduce_t<long long>(last_nonzero, MaxI{});
  if (threadIdx.x == 0) {
    // Rounding can leave the total a hair below the target: the last survivor with weight.
    // All weights NaN/zero (no finite logit) leaves -1: answer the top key's id.
    const long long at = pick != LLONG_MAX ? pick : (last_nonzero >= 0 ? last_nonzero : 0);
    *out_id = ids[at];
  }
}

struct Workspace {
  float *keys_in, *keys_out;
  int32_t *ids_in, *ids_out;
  void* sort_temp;
  size_t sort_temp_bytes;
};

size_t sort_temp_bytes(int64_t vocab) {
  size_t bytes = 0;
  BRISK_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(nullptr, bytes, static_cast<const float*>(nullptr),
                                                             static_cast<float*>(nullptr),
                                                             static_cast<const int32_t*>(nullptr),
                                                             static_cast<int32_t*>(nullptr), int(vocab)));
  return bytes;
}

Workspace carve(void* base, int64_t vocab) {
  char* p = static_cast<char*>(base);
  const size_t f = align_up(size_t(vocab) * sizeof(float)), i = align_up(size_t(vocab) * sizeof(int32_t));
  Workspace w;
  w.keys_in = reinterpret_cast<float*>(p);
  w.keys_out = reinterpret_cast<float*>(p + f);
  w.ids_in = reinterpret_cast<int32_t*>(p + 2 * f);
  w.ids_out = reinterpret_cast<int32_t*>(p + 2 * f + i);
  w.sort_temp = p + 2 * f + 2 * i;
  w.sort_temp_bytes = sort_temp_bytes(vocab);
  return w;
}

}  // namespace

void launch_argmax(const float* logits, int64_t rows, int64_t vocab, int32_t* out_ids, cudaStream_t stream) {
  BRISK_ASSERT(rows >= 0 && rows <= INT32_MAX && vocab > 0 && vocab <= INT32_MAX, "argmax: ", rows, " rows of ",
               vocab);
  if (rows == 0) return;
  argmax_kernel<<<unsigned(rows), kThreads, 0, stream>>>(logits, vocab, out_ids);
  check_launch("argmax_kernel");
}

void launch_penalties(float* logits_row, const int32_t* ids, const int32_t* counts, int n, float repetition,
                      float presence, float frequency, cudaStream_t stream) {
  BRISK_ASSERT(n >= 0, "penalties: ", n, " ids");
  if (n == 0) return;
  penalties_kernel<<<unsigned((n + 255) / 256), 256, 0, stream>>>(logits_row, ids, counts, n, repetition, presence,
                                                                  frequency);
  check_launch("penalties_kernel");
}

size_t sample_workspace_bytes(int64_t vocab) {
  BRISK_ASSERT(vocab > 0 && vocab <= INT32_MAX, "sample: vocabulary ", vocab);
  return 2 * align_up(size_t(vocab) * sizeof(float)) + 2 * align_up(size_t(vocab) * sizeof(int32_t)) +
         align_up(sort_temp_bytes(vocab));
}

void launch_sample(const float* logits_row, int64_t vocab, const SampleCutoffs& c, double u, void* workspace,
                   size_t workspace_bytes, int32_t* out_id, cudaStream_t stream) {
  BRISK_ASSERT(workspace_bytes >= sample_workspace_bytes(vocab), "sample: workspace of ", workspace_bytes,
               " bytes, needs ", sample_workspace_bytes(vocab));
  BRISK_ASSERT(c.temperature > 0.0f && c.top_k >= 0 && c.top_p > 0.0f && c.top_p <= 1.0f && c.min_p >= 0.0f &&
                   c.min_p <= 1.0f,
               "sample: bad cut-offs");
  BRISK_ASSERT(u >= 0.0 && u < 1.0, "sample: u = ", u);
  Workspace w = carve(workspace, vocab);
  const unsigned prep_blocks = unsigned(std::min<int64_t>((vocab + 255) / 256, 1024));
  sample_prep_kernel<<<prep_blocks, 256, 0, stream>>>(logits_row, vocab, c.temperature, w.keys_in, w.ids_in);
  check_launch("sample_prep_kernel");
  const bool cut = (c.top_k > 0 && c.top_k < vocab) || c.top_p < 1.0f || c.min_p > 0.0f;
  const float* keys = w.keys_in;
  const int32_t* ids = w.ids_in;
  if (cut) {
    size_t temp = w.sort_temp_bytes;
    BRISK_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(w.sort_temp, temp, w.keys_in, w.keys_out, w.ids_in,
                                                               w.ids_out, int(vocab), 0, int(sizeof(float) * 8),
                                                               stream));
    keys = w.keys_out;
    ids = w.ids_out;
  }
  select_and_draw_kernel<<<1, kThreads, 0, stream>>>(keys, ids, vocab, cut, c.top_k, c.top_p, c.min_p, u, out_id);
  check_launch("select_and_draw_kernel");
}

}  // namespace brisk::cuda
