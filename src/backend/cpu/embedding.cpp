// embedding: gathers rows of a F32/BF16/F16 table into fp32 (exact conversions).
#include <algorithm>
#include <cstring>

#include "backend/ops.h"
#include "core/thread_pool.h"

namespace brisk::ops {

void embedding(const Tensor& table, const int32_t* ids, int64_t n, Tensor out) {
  BRISK_ASSERT(table.device == Device::CPU && out.device == Device::CPU);
  BRISK_ASSERT(table.ndim() == 2 && table.is_contiguous() && dtype_is_float(table.dtype), "embedding: table ",
               table.desc());
  const int64_t V = table.dim(0), H = table.dim(1);
  BRISK_ASSERT(out.is_contiguous() && out.numel() == n * H, "embedding: out ", out.desc(), " for ", n,
               " ids of width ", H);
  // Check every id before writing anything: a bad id is user input (a prompt, a dataset row).
  for (int64_t i = 0; i < n; ++i)
    BRISK_CHECK(ids[i] >= 0 && ids[i] < V, "token id ", ids[i], " (position ", i,
                ") is out of range for the embedding table of vocabulary size ", V);
  const char* base = static_cast<const char*>(table.data);
  const size_t row_bytes = size_t(H) * dtype_size(table.dtype);
  float* op = out.f32();
  parallel_for(n, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, H)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      convert_floats(base + size_t(ids[i]) * row_bytes, table.dtype, op + i * H, DType::F32, size_t(H));
  });
}

}  // namespace brisk::ops
