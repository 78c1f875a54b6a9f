// Device helpers both flash-attention implementations share (flash_attn.cu: WMMA/scalar,
// flash_attn_mma.cu: mma.sync): the visibility rule, the NaN guard for an undersized max_seqlen,
// and the kernel parameters. Internal to those two files.
#pragma once
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

namespace brisk::cuda::flash_common {

// Whether query position qpos sees key position kpos (positions inside the segment): the same
// rule as the CPU op's first_key(): seg start (or qpos - window + 1) <= kpos <= qpos < seg_len.
__device__ __forceinline__ bool key_visible(int qpos, int kpos, int seg_len, int window) {
  return qpos < seg_len && kpos <= qpos && (window <= 0 || qpos - kpos < window);
}

// Last-resort guard for a caller whose max_seqlen is smaller than a segment (a bug the host
// cannot see: cu_seqlens lives on the device). The grid covers only max_seqlen rounded up to
// tiles, so the rows past it are written as NaN (rows [first, seg_len) of head h of x
// [T, heads, D]) instead of being left stale.
__device__ inline void poison_rows(__nv_bfloat16* x, int64_t row0, int first, int seg_len, int heads, int h, int D) {
  const __nv_bfloat16 nan = __float2bfloat16_rn(NAN);
  for (int64_t i = threadIdx.x; i < int64_t(seg_len - first) * D; i += blockDim.x)
    x[((row0 + first + i / D) * heads + h) * D + i % D] = nan;
}

struct Params {
  int n_heads, n_kv_heads, group, window;
  int64_t q_stride, k_stride, v_stride;
  float scale;
};

}  // namespace brisk::cuda::flash_common
