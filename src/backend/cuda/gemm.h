// Matrix products on the GPU through cuBLASLt: bf16 (or f32) operands, fp32 accumulation,
// row-major tensors as everywhere in brisk. Plans (layouts, the matmul descriptor and the chosen
// algorithm) are cached by shape, so the heuristic query runs once per distinct product.
//
//   C[m, n] = alpha * op(A) * op(B) + beta * C (+ bias[n], broadcast over rows)
//   op(A) = A [m, k] or, with trans_a, A^T where A is stored [k, m]; same for B ([k, n] / [n, k]).
//
// The model's linear y = x W^T is gemm(x, W, trans_b=true); its backward dx = dy W is
// gemm(dy, W) and dW += dy^T x is gemm(dy, x, trans_a=true, beta=1).
#pragma once
#include <cstdint>
#include <memory>

#include "core/dtype.h"

typedef struct CUstream_st* cudaStream_t;

namespace brisk::cuda {

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  const void* a = nullptr;
  DType a_type = DType::BF16;
  int64_t lda = 0;  // row stride of A as stored (elements); 0 = packed
  bool trans_a = false;
  const void* b = nullptr;
  DType b_type = DType::BF16;
  int64_t ldb = 0;
  bool trans_b = false;
  void* c = nullptr;
  DType c_type = DType::BF16;  // BF16 or F32 (F32 accumulates gradients into fp32 buffers)
  int64_t ldc = 0;
  float alpha = 1.0f, beta = 0.0f;  // beta != 0 reads C (accumulate)
  const void* c_in = nullptr;       // with beta != 0: read C from here (same layout) instead of c,
                                    // so y = x + proj(...) needs no copy of x into y first
  const void* bias = nullptr;       // optional [n], same dtype as A (bf16); fused epilogue
};

// One per stream user (not thread-safe): the cuBLASLt handle, a workspace and the plan cache.
class GemmEngine {
 public:
  explicit GemmEngine(size_t workspace_bytes = size_t(32) << 20);
  ~GemmEngine();
  GemmEngine(const GemmEngine&) = delete;
  GemmEngine& operator=(const GemmEngine&) = delete;

  void run(const GemmArgs& args, cudaStream_t stream);
  size_t cached_plans() const;
  size_t workspace_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace brisk::cuda
