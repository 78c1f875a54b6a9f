// cuBLASLt GEMM (backend/cuda/gemm.h) against a double-precision product of the same bf16
// values: every transpose combination, odd sizes, bias epilogue, accumulation (beta = 1) into
// bf16 and f32 outputs, strided operands.
#include <gtest/gtest.h>

#include "backend/cuda/gemm.h"
#include "ops_test_util.h"

namespace brisk::ops_test {
namespace {

struct Case {
  int64_t m, n, k;
  bool ta, tb, bias, accumulate, f32_out;
  int64_t pad;  // extra row stride on A (strided operand)
};

void run_case(cuda::GemmEngine& eng, const Case& c, uint64_t seed) {
  Rng rng(seed);
  const int64_t a_rows = c.ta ? c.k : c.m, a_cols = (c.ta ? c.m : c.k), lda = a_cols + c.pad;
  const int64_t b_rows = c.tb ? c.n : c.k, b_cols = c.tb ? c.k : c.n;
  auto a = random_bf16(rng, size_t(a_rows * lda), -1.0f, 1.0f);
  auto b = random_bf16(rng, size_t(b_rows * b_cols), -1.0f, 1.0f);
  auto bias = random_bf16(rng, size_t(c.n), -1.0f, 1.0f);
  auto c0 = random_f32(rng, size_t(c.m * c.n), -1.0f, 1.0f);
  std::vector<uint16_t> c0_16(c0.size());
  for (size_t i = 0; i < c0.size(); ++i) c0_16[i] = f32_to_bf16(c0[i]);
  auto af = bf16_to_f32(a), bf = bf16_to_f32(b), biasf = bf16_to_f32(bias), c0f = bf16_to_f32(c0_16);
  std::vector<float> want(size_t(c.m * c.n));
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < c.k; ++p) {
        double x = c.ta ? af[size_t(p * lda + i)] : af[size_t(i * lda + p)];
        double y = c.tb ? bf[size_t(j * b_cols + p)] : bf[size_t(p * b_cols + j)];
        s += x * y;
      }
      if (c.bias) s += biasf[size_t(j)];
      if (c.accumulate) s += c.f32_out ? c0[size_t(i * c.n + j)] : c0f[size_t(i * c.n + j)];
      want[size_t(i * c.n + j)] = float(s);
    }
  DeviceBuffer da = to_device(a), db = to_device(b), dbias = to_device(bias);
  DeviceBuffer dc = c.accumulate ? (c.f32_out ? to_device(c0) : to_device(c0_16))
                                 : (c.f32_out ? poisoned_f32(want.size()) : poisoned_bf16(want.size()));
  cuda::GemmArgs g;
  g.m = c.m, g.n = c.n, g.k = c.k;
  g.a = da.data(), g.lda = lda, g.trans_a = c.ta;
  g.b = db.data(), g.trans_b = c.tb;
  g.c = dc.data(), g.c_type = c.f32_out ? DType::F32 : DType::BF16;
  g.beta = c.accumulate ? 1.0f : 0.0f;
  g.bias = c.bias ? dbias.data() : nullptr;
  eng.run(g, nullptr);
  std::vector<float> got = c.f32_out ? from_device<float>(dc, want.size()) : bf16_to_f32(from_device<uint16_t>(dc, want.size()));
  double err = max_rel_err(got, want);
  // bf16 output: one rounding (2^-8 relative); f32 output: fp32 accumulation over k terms.
  double tol = c.f32_out ? 1e-5 * std::sqrt(double(c.k)) : 8e-3;
  std::printf("gemm m=%lld n=%lld k=%lld ta=%d tb=%d bias=%d acc=%d f32=%d pad=%lld: max_rel_err %.3g (tol %.1g)\n",
              (long long)c.m, (long long)c.n, (long long)c.k, c.ta, c.tb, c.bias, c.accumulate, c.f32_out,
              (long long)c.pad, err, tol);
  EXPECT_LE(err, tol);
}

TEST(CudaOps, GemmMatchesDoubleProduct) {
  BRISK_REQUIRE_CUDA_DEVICE();
  cuda::GemmEngine eng;
  uint64_t seed = 100;
  for (Case c : std::vector<Case>{
           {1, 1, 1, false, false, false, false, false, 0},
           {17, 3, 130, false, true, false, false, false, 0},      // linear: x W^T
           {127, 130, 64, false, true, true, false, false, 0},     // with bias
           {130, 127, 17, false, false, false, true, false, 0},    // dx += dy W
           {64, 16, 130, true, false, false, true, true, 0},       // dW += dy^T x into f32
           {3, 4096, 17, false, true, false, false, false, 8},     // strided A
           {256, 512, 1024, false, true, false, true, false, 0},
           {16, 4096, 2048, true, false, false, true, true, 0},    // LoRA dA shape
       })
    run_case(eng, c, seed++);
  // Plans are cached by shape: running the same shapes again adds none.
  size_t plans = eng.cached_plans();
  run_case(eng, {17, 3, 130, false, true, false, false, false, 0}, 7);
  EXPECT_EQ(eng.cached_plans(), plans);
}

}  // namespace
}  // namespace brisk::ops_test
