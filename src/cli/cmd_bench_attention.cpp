// `brisk bench attention`: the CUDA flash-attention kernels (backend/cuda/flash_attn.h) on
// B packed equal-length causal segments; one JSON line with the median forward and
// forward+backward times and TFLOP/s. FLOPs are counted as /work/shared/bench/README.md's SDPA
// table counts them (causal: forward 2*B*Hq*S^2*D, backward 2.5x forward), so the numbers compare
// with its FlashAttention-2 row (H100, 2, 32/8, 2048, 128: 252 fwd, 193 fwd+bwd TFLOP/s). With a
// window the same causal count is used (it overstates the work: compare windowed runs only with
// each other).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#ifdef BRISK_HAVE_CUDA
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/flash_attn.h"
#include "core/dtype.h"
#include "core/rng.h"
#endif

namespace {

struct Args {
  int batch = 2, heads = 32, kv_heads = 8, seq = 2048, head_dim = 128, iters = 20, window = 0;
  std::string impl = "tc";
};

#ifdef BRISK_HAVE_CUDA
using brisk::cuda::DeviceBuffer;

DeviceBuffer random_bf16_buffer(brisk::Rng& rng, size_t n) {
  std::vector<uint16_t> host(n);
  for (auto& x : host) x = brisk::f32_to_bf16(rng.uniform(-1.0f, 1.0f));
  DeviceBuffer d(n * sizeof(uint16_t));
  d.upload(host.data(), n * sizeof(uint16_t));
  return d;
}

// Median of `iters` timed runs of fn (after 3 untimed ones), in ms, timed with CUDA events.
template <typename Fn> double median_ms(int iters, const Fn& fn) {
  for (int i = 0; i < 3; ++i) fn();
  cudaEvent_t start, stop;
  BRISK_CUDA_CHECK(cudaEventCreate(&start));
  BRISK_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    BRISK_CUDA_CHECK(cudaEventRecord(start, nullptr));
    fn();
    BRISK_CUDA_CHECK(cudaEventRecord(stop, nullptr));
    BRISK_CUDA_CHECK(cudaEventSynchronize(stop));
    float t = 0.0f;
    BRISK_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(double(t));
  }
  BRISK_CUDA_CHECK(cudaEventDestroy(start));
  BRISK_CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int run_bench(const Args& a) {
  using namespace brisk;
  BRISK_CHECK(a.batch >= 1 && a.seq >= 1 && a.iters >= 1, "--batch, --seq and --iters must be >= 1");
  BRISK_CHECK(a.impl == "tc" || a.impl == "scalar" || a.impl == "mma", "--impl ", a.impl, ": tc, scalar or mma");
  cuda::FlashAttnShape s;
  s.tokens = int64_t(a.batch) * a.seq;
  s.n_seg = a.batch;
  s.max_seqlen = a.seq;
  s.n_heads = a.heads;
  s.n_kv_heads = a.kv_heads;
  s.head_dim = a.head_dim;
  s.scale = 1.0f / std::sqrt(float(a.head_dim));
  s.window = a.window;
  cuda::check_flash_attn_shape(s);
  int device_count = 0;
  const cudaError_t count_err = cudaGetDeviceCount(&device_count);
  BRISK_CHECK(count_err == cudaSuccess && device_count > 0, "bench attention: no CUDA device (",
              count_err == cudaSuccess ? "none found" : cudaGetErrorString(count_err), ")");
  cudaDeviceProp prop{};
  BRISK_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const auto impl = a.impl == "tc"     ? cuda::FlashAttnImpl::TensorCores
                   : a.impl == "mma" ? cuda::FlashAttnImpl::Mma
                                     : cuda::FlashAttnImpl::Scalar;

  const size_t nq = size_t(s.tokens) * a.heads * a.head_dim, nk = size_t(s.tokens) * a.kv_heads * a.head_dim;
  Rng rng(7);
  DeviceBuffer q = random_bf16_buffer(rng, nq), k = random_bf16_buffer(rng, nk), v = random_bf16_buffer(rng, nk);
  DeviceBuffer dout = random_bf16_buffer(rng, nq);
  DeviceBuffer out(nq * 2), lse(size_t(s.tokens) * a.heads * sizeof(float));
  DeviceBuffer dq(nq * 2), dk(nk * 2), dv(nk * 2), scratch(cuda::flash_attn_backward_scratch_bytes(s));
  std::vector<int32_t> cu(size_t(a.batch) + 1);
  for (int b = 0; b <= a.batch; ++b) cu[size_t(b)] = b * a.seq;
  DeviceBuffer d_cu(cu.size() * sizeof(int32_t));
  d_cu.upload(cu.data(), cu.size() * sizeof(int32_t));

  using bf = __nv_bfloat16;
  auto forward = [&] {
    cuda::launch_flash_attn_forward(q.as<bf>(), k.as<bf>(), v.as<bf>(), d_cu.as<int32_t>(), s, out.as<bf>(),
                                    lse.as<float>(), nullptr, impl);
  };
  auto backward = [&] {
    cuda::launch_flash_attn_backward(q.as<bf>(), k.as<bf>(), v.as<bf>(), out.as<bf>(), lse.as<float>(), dout.as<bf>(),
                                     d_cu.as<int32_t>(), s, dq.as<bf>(), dk.as<bf>(), dv.as<bf>(), scratch.data(),
                                     nullptr, impl);
  };
  const double fwd_ms = median_ms(a.iters, forward);
  const double fwd_bwd_ms = median_ms(a.iters, [&] {
    forward();
    backward();
  });
  cuda::synchronize();

  const double fwd_flops = 2.0 * a.batch * a.heads * double(a.seq) * a.seq * a.head_dim;
  const double fwd_tflops = fwd_flops / (fwd_ms * 1e-3) / 1e12;
  const double fwd_bwd_tflops = 3.5 * fwd_flops / (fwd_bwd_ms * 1e-3) / 1e12;
  nlohmann::json j = {{"bench", "attention"},     {"device", prop.name},        {"impl", a.impl},
                      {"batch", a.batch},         {"heads", a.heads},           {"kv_heads", a.kv_heads},
                      {"seq", a.seq},             {"head_dim", a.head_dim},     {"window", a.window},
                      {"iters", a.iters},         {"fwd_ms", fwd_ms},           {"fwd_tflops", fwd_tflops},
                      {"fwd_bwd_ms", fwd_bwd_ms}, {"fwd_bwd_tflops", fwd_bwd_tflops}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
#endif

brisk::cli::Registrar reg("bench attention", "Flash-attention forward and backward TFLOP/s (CUDA)", [](CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("--batch", a->batch, "Segments (equal length, packed)")->default_val(2);
  app.add_option("--heads", a->heads, "Query heads")->default_val(32);
  app.add_option("--kv-heads", a->kv_heads, "Key/value heads (GQA)")->default_val(8);
  app.add_option("--seq", a->seq, "Tokens per segment")->default_val(2048);
  app.add_option("--head-dim", a->head_dim, "16, 32, 64 or 128")->default_val(128);
  app.add_option("--window", a->window, "Sliding window (0 = none)")->default_val(0);
  app.add_option("--iters", a->iters, "Timed runs (the median is reported)")->default_val(20);
  app.add_option("--impl", a->impl, "tc (WMMA tensor cores), mma (mma.sync kernels; backward falls back to tc where not implemented) or scalar")->default_val("tc");
  return [a]() -> int {
#ifdef BRISK_HAVE_CUDA
    return run_bench(*a);
#else
    throw brisk::Error("bench attention: this brisk was built without CUDA");
#endif
  };
});

}  // namespace
