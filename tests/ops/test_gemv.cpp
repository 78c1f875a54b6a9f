// Decode GEMV (backend/cuda/gemv.h) against a double-precision product of the same bf16 values:
// m = 1..8 rows, odd n (a partial last block), k from one uint4 per row to past the staged chunk,
// bias / accumulate / alpha variants into bf16 and f32 outputs, and a replay from a CUDA graph.
#include <gtest/gtest.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv.h"
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
}

}  // namespace
}  // namespace brisk::ops_test
