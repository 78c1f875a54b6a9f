// Decode GEMV (backend/cuda/gemv.h) against a double-precision product of the same bf16 values:
// m = 1..8 rows, odd n (a partial last block), k from one uint4 per row to past the staged chunk,
// bias / accumulate / alpha variants into bf16 and f32 outputs, and a replay from a CUDA graph.
#include <gtest/gtest.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/decode_ops.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/swiglu.h"
#include "ops_test_util.h"

namespace brisk::ops_test {
namespace {

struct Case {
  int m;
  int64_t n, k;
  bool bias, accumulate, f32_out;
  float alpha;
};

struct Inputs {
  std::vector<uint16_t> w, x, bias, y0_16;
  std::vector<float> y0;  // f32 start for accumulate into f32
};

Inputs make_inputs(const Case& c, uint64_t seed) {
  Rng rng(seed);
  Inputs in;
  in.w = random_bf16(rng, size_t(c.n * c.k), -1.0f, 1.0f);
  in.x = random_bf16(rng, size_t(c.m * c.k), -1.0f, 1.0f);
  in.bias = random_bf16(rng, size_t(c.n), -1.0f, 1.0f);
  in.y0 = random_f32(rng, size_t(c.m * c.n), -1.0f, 1.0f);
  in.y0_16.resize(in.y0.size());
  for (size_t i = 0; i < in.y0.size(); ++i) in.y0_16[i] = f32_to_bf16(in.y0[i]);
  return in;
}

std::vector<float> reference(const Case& c, const Inputs& in) {
  auto wf = bf16_to_f32(in.w), xf = bf16_to_f32(in.x), bf = bf16_to_f32(in.bias), y16 = bf16_to_f32(in.y0_16);
  std::vector<float> want(size_t(c.m * c.n));
  for (int64_t r = 0; r < c.m; ++r)
    for (int64_t j = 0; j < c.n; ++j) {
      double s = 0;
      const float* wr = wf.data() + j * c.k;
      const float* xr = xf.data() + r * c.k;
      for (int64_t p = 0; p < c.k; ++p) s += double(xr[p]) * double(wr[p]);
      s *= c.alpha;
      if (c.bias) s += bf[size_t(j)];
      if (c.accumulate) s += c.f32_out ? in.y0[size_t(r * c.n + j)] : y16[size_t(r * c.n + j)];
      want[size_t(r * c.n + j)] = float(s);
    }
  return want;
}

// Enqueues the case's launch on `stream` with the device buffers.
void launch_case(const Case& c, const DeviceBuffer& w, const DeviceBuffer& x, const DeviceBuffer& bias,
                 DeviceBuffer& y, cudaStream_t stream) {
  const auto* wp = static_cast<const __nv_bfloat16*>(w.data());
  const auto* xp = static_cast<const __nv_bfloat16*>(x.data());
  const auto* bp = c.bias ? static_cast<const __nv_bfloat16*>(bias.data()) : nullptr;
  if (c.f32_out)
    cuda::launch_gemv(wp, xp, static_cast<float*>(y.data()), c.m, c.n, c.k, bp, c.accumulate, stream, c.alpha);
  else
    cuda::launch_gemv(wp, xp, static_cast<__nv_bfloat16*>(y.data()), c.m, c.n, c.k, bp, c.accumulate, stream,
                      c.alpha);
}

DeviceBuffer initial_y(const Case& c, const Inputs& in) {
  const size_t n = size_t(c.m * c.n);
  if (c.accumulate) return c.f32_out ? to_device(in.y0) : to_device(in.y0_16);
  return c.f32_out ? poisoned_f32(n) : poisoned_bf16(n);
}

std::vector<float> read_y(const Case& c, const DeviceBuffer& y) {
  const size_t n = size_t(c.m * c.n);
  return c.f32_out ? from_device<float>(y, n) : bf16_to_f32(from_device<uint16_t>(y, n));
}

// bf16 output: one rounding (2^-8 relative) of an fp32 sum; f32 output: fp32 accumulation over k.
double tolerance(const Case& c) { return c.f32_out ? 1e-5 * std::sqrt(double(c.k)) : 8e-3; }

std::string name(const Case& c) {
  return dims("gemv m,n,k", {c.m, c.n, c.k}) + (c.bias ? " bias" : "") + (c.accumulate ? " acc" : "") +
         (c.f32_out ? " f32" : " bf16") + (c.alpha != 1.0f ? " alpha" : "");
}

void run_case(const Case& c, uint64_t seed) {
  ASSERT_TRUE(cuda::gemv_supported(c.m, c.k, reinterpret_cast<void*>(256), reinterpret_cast<void*>(256)));
  const Inputs in = make_inputs(c, seed);
  DeviceBuffer w = to_device(in.w), x = to_device(in.x), bias = to_device(in.bias);
  DeviceBuffer y = initial_y(c, in);
  launch_case(c, w, x, bias, y, nullptr);
  expect_close(name(c), read_y(c, y), reference(c, in), tolerance(c));
}

TEST(CudaOps, GemvMatchesDoubleProduct) {
  BRISK_REQUIRE_CUDA_DEVICE();
  // k: one uint4 per row, a LoRA rank, the unrolled loop plus remainder, the 8B MLP width (x for
  // m >= 2 staged in several chunks) and, for m <= 2, past the 16384 elements of one chunk.
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 8}, {3, 64}, {5, 16}, {127, 2048}, {4101, 14336}};
  uint64_t seed = 500;
  int variant = 0;
  for (int m = 1; m <= cuda::kGemvMaxRows; ++m) {
    for (auto [n, k] : shapes) {
      const int v = variant++;  // every combination of bias / accumulate / f32 output / alpha
      run_case({m, n, k, (v & 1) != 0, (v & 2) != 0, (v & 4) != 0, (v % 3 == 0) ? 0.75f : 1.0f}, seed++);
    }
    if (m <= 2) run_case({m, 9, 16384 + 8 * 37, m == 1, true, m == 2, 1.0f}, seed++);
  }
}

TEST(CudaOps, GemvReplaysFromCudaGraph) {
  BRISK_REQUIRE_CUDA_DEVICE();
  const Case c{1, 1000 + 3, 4096, true, true, true, 1.0f};
  const Inputs in = make_inputs(c, 77);
  DeviceBuffer w = to_device(in.w), x = to_device(in.x), bias = to_device(in.bias);
  DeviceBuffer y = initial_y(c, in);
  cudaStream_t stream = nullptr;
  BRISK_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  BRISK_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  launch_case(c, w, x, bias, y, stream);
  BRISK_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  BRISK_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  // Two replays accumulate twice: y = y0 + 2 (x W^T + b).
  BRISK_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  BRISK_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  BRISK_CUDA_CHECK(cudaStreamSynchronize(stream));
  BRISK_CUDA_CHECK(cudaGraphExecDestroy(exec));
  BRISK_CUDA_CHECK(cudaGraphDestroy(graph));
  BRISK_CUDA_CHECK(cudaStreamDestroy(stream));
  std::vector<float> want = reference(c, in);
  for (size_t i = 0; i < want.size(); ++i) want[i] = 2.0f * want[i] - in.y0[i];
  expect_close("gemv graph replay x2", read_y(c, y), want, tolerance(c));
}

// The fused decode GEMVs against the two kernels each replaces: launch_rmsnorm_f32_rows (or
// launch_swiglu) then launch_gemv. Same staged bf16 input bit for bit, so the outputs and the
// optional copy of the input row (the LoRA path's) must be identical, not merely close.
TEST(CudaOps, FusedGemvMatchesSeparateKernels) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(902);
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{9, 8}, {1003, 4096}, {77, 14336}, {40, 16384}}) {
    auto w = random_bf16(rng, size_t(n * k), -1.0f, 1.0f);
    auto bias = random_bf16(rng, size_t(n), -1.0f, 1.0f);
    DeviceBuffer dw = to_device(w), db = to_device(bias);
    const auto* wp = dw.as<__nv_bfloat16>();
    // RMSNorm: three f32 residual rows, the GEMV reads row 2 through the row index (the LM head's
    // use), bf16 and f32 outputs, with and without bias and the xn copy.
    auto x = random_f32(rng, size_t(3 * k), -3.0f, 3.0f);
    auto nw = random_f32(rng, size_t(k), 0.5f, 1.5f);
    DeviceBuffer dx = to_device(x), dnw = to_device(nw), drow = to_device(std::vector<int32_t>{2});
    const float eps = 1e-5f;
    DeviceBuffer ref_xn = poisoned_bf16(size_t(k)), ref_y = poisoned_f32(size_t(n));
    cuda::launch_rmsnorm_f32_rows(dx.as<float>(), drow.as<int32_t>(), dnw.as<float>(), ref_xn.as<__nv_bfloat16>(), 1,
                                  int(k), eps, nullptr);
    cuda::launch_gemv(wp, ref_xn.as<__nv_bfloat16>(), ref_y.as<float>(), 1, n, k, db.as<__nv_bfloat16>(), false,
                      nullptr);
    DeviceBuffer xn = poisoned_bf16(size_t(k)), y = poisoned_f32(size_t(n)), y16 = poisoned_bf16(size_t(n)),
                 ref_y16 = poisoned_bf16(size_t(n));
    cuda::launch_gemv_rmsnorm(wp, dx.as<float>(), drow.as<int32_t>(), dnw.as<float>(), eps, xn.as<__nv_bfloat16>(),
                              y.as<float>(), true, n, k, db.as<__nv_bfloat16>(), nullptr);
    cuda::launch_gemv(wp, ref_xn.as<__nv_bfloat16>(), ref_y16.as<__nv_bfloat16>(), 1, n, k, nullptr, false, nullptr);
    cuda::launch_gemv_rmsnorm(wp, dx.as<float>(), drow.as<int32_t>(), dnw.as<float>(), eps, nullptr,
                              y16.as<__nv_bfloat16>(), false, n, k, nullptr, nullptr);
    const std::string what = dims("n,k", {n, k});
    EXPECT_EQ(from_device<uint16_t>(xn, size_t(k)), from_device<uint16_t>(ref_xn, size_t(k))) << what << " xn";
    EXPECT_EQ(from_device<float>(y, size_t(n)), from_device<float>(ref_y, size_t(n))) << what << " rmsnorm f32";
    EXPECT_EQ(from_device<uint16_t>(y16, size_t(n)), from_device<uint16_t>(ref_y16, size_t(n)))
        << what << " rmsnorm bf16";

    // SwiGLU into an f32 accumulator (the down projection adding into the residual).
    auto gate = random_bf16(rng, size_t(k), -4.0f, 4.0f), up = random_bf16(rng, size_t(k), -2.0f, 2.0f);
    auto y0 = random_f32(rng, size_t(n), -1.0f, 1.0f);
    DeviceBuffer dg = to_device(gate), du = to_device(up), act = poisoned_bf16(size_t(k)),
                 ref_act = poisoned_bf16(size_t(k)), ya = to_device(y0), ref_ya = to_device(y0);
    cuda::launch_swiglu(dg.as<__nv_bfloat16>(), du.as<__nv_bfloat16>(), ref_act.as<__nv_bfloat16>(), k, nullptr);
    cuda::launch_gemv(wp, ref_act.as<__nv_bfloat16>(), ref_ya.as<float>(), 1, n, k, nullptr, true, nullptr);
    cuda::launch_gemv_swiglu(wp, dg.as<__nv_bfloat16>(), du.as<__nv_bfloat16>(), act.as<__nv_bfloat16>(),
                             ya.as<float>(), n, k, true, nullptr);
    EXPECT_EQ(from_device<uint16_t>(act, size_t(k)), from_device<uint16_t>(ref_act, size_t(k))) << what << " act";
    EXPECT_EQ(from_device<float>(ya, size_t(n)), from_device<float>(ref_ya, size_t(n))) << what << " swiglu";
    // And against double precision, so "identical" cannot mean "identically wrong".
    auto actf = bf16_to_f32(from_device<uint16_t>(ref_act, size_t(k))), wf = bf16_to_f32(w);
    std::vector<float> want(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      double s = y0[size_t(j)];
      for (int64_t p = 0; p < k; ++p) s += double(actf[size_t(p)]) * wf[size_t(j * k + p)];
      want[size_t(j)] = float(s);
    }
    expect_close("gemv_swiglu " + what, from_device<float>(ya, size_t(n)), want, 1e-5 * std::sqrt(double(k)));
    std::printf("[fused gemv] %s: rmsnorm and swiglu variants bit-identical to the separate kernels\n",
                what.c_str());
  }
}

TEST(CudaOps, GemvRejectsUnsupportedShapes) {
  // Host-only predicate: no device needed.
  void* aligned = reinterpret_cast<void*>(4096);
  void* misaligned = reinterpret_cast<void*>(4096 + 8);
  EXPECT_TRUE(cuda::gemv_supported(1, 8, aligned, aligned));
  EXPECT_TRUE(cuda::gemv_supported(8, 14336, aligned, aligned));
  EXPECT_FALSE(cuda::gemv_supported(0, 8, aligned, aligned));
  EXPECT_FALSE(cuda::gemv_supported(9, 8, aligned, aligned));    // prefill: cuBLASLt
  EXPECT_FALSE(cuda::gemv_supported(1, 12, aligned, aligned));   // k not a multiple of 8
  EXPECT_FALSE(cuda::gemv_supported(1, 0, aligned, aligned));
  EXPECT_FALSE(cuda::gemv_supported(1, 8, misaligned, aligned));
  EXPECT_FALSE(cuda::gemv_supported(1, 8, aligned, misaligned));
  EXPECT_TRUE(cuda::gemv_fused_supported(16384, aligned));
  EXPECT_FALSE(cuda::gemv_fused_supported(16392, aligned));  // the row no longer fits the stage
  EXPECT_FALSE(cuda::gemv_fused_supported(12, aligned));
  EXPECT_FALSE(cuda::gemv_fused_supported(8, misaligned));
}

}  // namespace
}  // namespace brisk::ops_test
