// embedding: gathers rows of a F32/BF16/F16 table into fp32 (exact conversions), or of a
// block-quantized table (a GGUF token_embd in Q8_0/Q4_K/...) by dequantizing each row.
#include <algorithm>
#include <cstring>

#include "backend/ops.h"
#include "backend/quant.h"
#include "core/thread_pool.h"

namespace brisk::ops {

void embedding(const Tensor& table, const int32_t* ids, int64_t n, Tensor out) {
  BRISK_ASSERT(table.device == Device::CPU && out.device == Device::CPU);
  BRISK_ASSERT(table.ndim() == 2 && table.is_contiguous() &&
                   (dtype_is_float(table.dtype) || dtype_is_quantized(table.dtype)),
               "embedding: table ",
               table.desc());
  const int64_t V = table.dim(0), H = table.dim(1);
  BRISK_ASSERT(out.is_contiguous() && out.numel() == n * H, "embedding: out ", out.desc(), " for ", n,
               " ids of width ", H);
  // Check every id before writing anything: a bad id is user input (a prompt, a dataset row).
  for (int64_t i = 0; i < n; ++i)
    BRISK_CHECK(ids[i] >= 0 && ids[i] < V, "token id ", ids[i], " (position ", i,
                ") is out of range for the embedding table of vocabulary size ", V);
  const char* base = static_cast<const char*>(table.data);
  const bool quantized = dtype_is_quantized(table.dtype);
  const size_t row_bytes = quantized ? dtype_row_bytes(table.dtype, H) : size_t(H) * dtype_size(table.dtype);
  float* op = out.f32();
  parallel_for(n, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, H)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const char* row = base + size_t(ids[i]) * row_bytes;
      if (quantized)
        quant::dequantize_row(table.dtype, row, op + i * H, H);
      else
        convert_floats(row, table.dtype, op + i * H, DType::F32, size_t(H));
    }
  });
}

}  // namespace brisk::ops
