// cuBLASLt is column-major; brisk's tensors are row-major. A row-major [r, c] matrix with row
// stride ld is the column-major [c, r] matrix with leading dimension ld, so the row-major
// product C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: cuBLASLt's
// first operand is our B, its second our A, and its output [n, m] is our C. A bias over our
// columns is a bias over cuBLASLt's rows, which is what its BIAS epilogue adds.
#include "backend/cuda/gemm.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <tuple>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "core/error.h"

#define BRISK_CUBLAS_CHECK(expr)                                                                      \
  do {                                                                                              \
    cublasStatus_t st_ = (expr);                                                                    \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                               \
      throw ::brisk::Error(::brisk::cat(#expr, " failed at ", __FILE__, ":", __LINE__, ": ",        \
                                        cublasLtGetStatusName(st_), " (", cublasLtGetStatusString(st_), ")")); \
  } while (0)

namespace brisk::cuda {
namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    case DType::F32: return CUDA_R_32F;
    default: BRISK_ASSERT(false && "gemm: unsupported dtype");
  }
  return CUDA_R_32F;
}

// Largest power of two (<= 256) dividing the address: cuBLASLt picks kernels by the alignment
// it is promised, so slices that are not 256-byte aligned must say so.
int alignment(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int al = 256;
  while (al > 1 && (a % uintptr_t(al)) != 0) al /= 2;
  return al;
}

using PlanKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int, int, bool, bool, bool,
                           bool, int, int, int, int>;

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    for (auto l : {a, b, c})
      if (l) cublasLtMatrixLayoutDestroy(l);
  }
};

}  // namespace

struct GemmEngine::Impl {
  cublasLtHandle_t handle = nullptr;
  DeviceBuffer workspace;
  std::map<PlanKey, std::unique_ptr<Plan>> plans;

  Plan& plan_for(const GemmArgs& g, int64_t lda, int64_t ldb, int64_t ldc) {
    PlanKey key{g.m, g.n, g.k, lda, ldb, ldc, int(g.a_type), int(g.b_type), int(g.c_type), g.trans_a, g.trans_b,
                g.bias != nullptr, g.beta != 0.0f, alignment(g.a), alignment(g.b),
                std::min(alignment(g.c), alignment(g.c_in ? g.c_in : g.c)),
                g.bias ? alignment(g.bias) : 0};
    auto it = plans.find(key);
    if (it != plans.end()) return *it->second;
    auto p = std::make_unique<Plan>();
    const bool f32_inputs = g.a_type == DType::F32;
    BRISK_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    // cuBLASLt's operand 1 is our B, operand 2 our A (see the top of this file).
    cublasOperation_t op1 = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op2 = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    BRISK_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op1, sizeof(op1)));
    BRISK_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op2, sizeof(op2)));
    if (g.bias) {
      cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
      cudaDataType_t bt = cuda_type(g.a_type);
      BRISK_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
      BRISK_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)));
    }
    (void)f32_inputs;
    // Stored shapes (column-major view of the row-major buffers).
    uint64_t r1 = uint64_t(g.trans_b ? g.k : g.n), c1 = uint64_t(g.trans_b ? g.n : g.k);
    uint64_t r2 = uint64_t(g.trans_a ? g.m : g.k), c2 = uint64_t(g.trans_a ? g.k : g.m);
    BRISK_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, cuda_type(g.b_type), r1, c1, ldb));
    BRISK_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, cuda_type(g.a_type), r2, c2, lda));
    BRISK_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, cuda_type(g.c_type), uint64_t(g.n), uint64_t(g.m), ldc));

    cublasLtMatmulPreference_t pref = nullptr;
    BRISK_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = workspace.size();
    uint32_t al1 = uint32_t(alignment(g.b)), al2 = uint32_t(alignment(g.a)), alc = uint32_t(alignment(g.c));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al1, sizeof(al1));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al2, sizeof(al2));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &alc, sizeof(alc));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &alc, sizeof(alc));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, p->desc, p->a, p->b, p->c, p->c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    BRISK_CHECK(st == CUBLAS_STATUS_SUCCESS && found > 0, "cuBLASLt has no algorithm for a ", g.m, "x", g.n, "x", g.k,
                " product (", dtype_name(g.a_type), " -> ", dtype_name(g.c_type), ", trans ", g.trans_a, "/",
                g.trans_b, ", ld ", lda, "/", ldb, "/", ldc, ")");
    p->algo = result.algo;
    Plan& ref = *p;
    plans.emplace(key, std::move(p));
    return ref;
  }
};

GemmEngine::GemmEngine(size_t workspace_bytes) : impl_(std::make_unique<Impl>()) {
  BRISK_CUBLAS_CHECK(cublasLtCreate(&impl_->handle));
  impl_->workspace = DeviceBuffer(workspace_bytes);
}

GemmEngine::~GemmEngine() {
  impl_->plans.clear();
  if (impl_->handle) cublasLtDestroy(impl_->handle);
}

size_t GemmEngine::cached_plans() const { return impl_->plans.size(); }
size_t GemmEngine::workspace_bytes() const { return impl_->workspace.size(); }

void GemmEngine::run(const GemmArgs& g, cudaStream_t stream) {
  BRISK_ASSERT(g.m > 0 && g.n > 0 && g.k > 0 && g.a && g.b && g.c);
  BRISK_ASSERT(g.a_type == g.b_type && (g.c_type == g.a_type || g.c_type == DType::F32));
  BRISK_ASSERT(!g.bias || g.c_type == g.a_type);
  // Packed leading dimensions: the row length of each stored matrix.
  int64_t lda = g.lda ? g.lda : (g.trans_a ? g.m : g.k);
  int64_t ldb = g.ldb ? g.ldb : (g.trans_b ? g.k : g.n);
  int64_t ldc = g.ldc ? g.ldc : g.n;
  Plan& p = impl_->plan_for(g, lda, ldb, ldc);
  if (g.bias)
    BRISK_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
  const void* c_in = g.c_in ? g.c_in : g.c;
  BRISK_CUBLAS_CHECK(cublasLtMatmul(impl_->handle, p.desc, &g.alpha, g.b, p.a, g.a, p.b, &g.beta, c_in, p.c, g.c, p.c,
                                    &p.algo, impl_->workspace.data(), impl_->workspace.size(), stream));
}

}  // namespace brisk::cuda
