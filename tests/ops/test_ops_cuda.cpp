// CUDA op parity: every kernel against the CPU reference op (backend/ops.h) on fresh random
// inputs at odd sizes, outputs poisoned with NaN first, as llama.cpp's test-backend-ops checks
// each backend against the CPU. Label `gpu`: runs on the GPU machine only; skips (never passes)
// where there is no CUDA device.
//
// Tolerances, on max|a-b| / max|b|: bf16 outputs 1e-2 (one bf16 rounding is <= 2^-9 relative);
// f32 outputs accumulated in a different order than the CPU's double sums 1e-5; copies exact.
#include <gtest/gtest.h>

#include <vector>

#include "backend/cuda/embedding.h"
#include "backend/cuda/rmsnorm.h"
#include "backend/cuda/swiglu.h"
#include "backend/ops.h"
#include "ops_test_util.h"

namespace brisk::ops_test {
namespace {

constexpr double kTolBf16 = 1e-2;
constexpr double kTolF32 = 1e-5;
const int64_t kRows[] = {1, 3, 17, 127, 130};
const int kWidths[] = {1, 3, 17, 127, 130, 4096};

__nv_bfloat16* bf16(const DeviceBuffer& d) { return d.as<__nv_bfloat16>(); }

TEST(CudaOps, Rmsnorm) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(101);
  for (int64_t n : kRows)
    for (int H : kWidths)
      for (int variant = 0; variant < 2; ++variant) {
        // variant 0: f32 weight, offset 0 (Llama); variant 1: bf16 weight, offset 1 (Gemma).
        const float eps = 1e-6f, offset = variant ? 1.0f : 0.0f;
        const size_t nx = size_t(n) * size_t(H);
        auto x = random_bf16(rng, nx, -2.0f, 2.0f);
        std::vector<float> w_f32;
        std::vector<uint16_t> w_bf16;
        if (variant) {
          w_bf16 = random_bf16(rng, size_t(H), -0.5f, 0.5f);
          w_f32 = bf16_to_f32(w_bf16);
        } else {
          w_f32 = random_f32(rng, size_t(H), 0.5f, 1.5f);
        }
        auto xf = bf16_to_f32(x);
        std::vector<float> want(nx);
        ops::rmsnorm(Tensor(xf.data(), DType::F32, {n, H}), Tensor(w_f32.data(), DType::F32, {H}), eps,
                     Tensor(want.data(), DType::F32, {n, H}), offset);

        DeviceBuffer dx = to_device(x), dout = poisoned_bf16(nx);
        DeviceBuffer dw = variant ? to_device(w_bf16) : to_device(w_f32);
        if (variant)
          cuda::launch_rmsnorm(bf16(dx), bf16(dw), bf16(dout), n, H, eps, offset, nullptr);
        else
          cuda::launch_rmsnorm(bf16(dx), dw.as<float>(), bf16(dout), n, H, eps, offset, nullptr);
        auto got = bf16_to_f32(from_device<uint16_t>(dout, nx));
        expect_close(dims(variant ? "rmsnorm bf16 w, offset 1" : "rmsnorm f32 w", {n, H}), got, want, kTolBf16);
      }
}

TEST(CudaOps, RmsnormBackward) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(102);
  for (int64_t n : kRows)
    for (int H : kWidths) {
      const float eps = 1e-5f, offset = (H % 2) ? 1.0f : 0.0f;
      const bool accumulate = n % 2 == 1;  // both dw modes across the cases
      const size_t nx = size_t(n) * size_t(H);
      auto x = random_bf16(rng, nx, -2.0f, 2.0f), dy = random_bf16(rng, nx, -1.0f, 1.0f);
      auto w = random_f32(rng, size_t(H), 0.5f, 1.5f), dw0 = random_f32(rng, size_t(H), -1.0f, 1.0f);
      auto xf = bf16_to_f32(x), dyf = bf16_to_f32(dy);
      std::vector<float> want_dx(nx), want_dw = dw0;
      ops::rmsnorm_backward(Tensor(xf.data(), DType::F32, {n, H}), Tensor(w.data(), DType::F32, {H}), eps, offset,
                            Tensor(dyf.data(), DType::F32, {n, H}), Tensor(want_dx.data(), DType::F32, {n, H}),
                            Tensor(want_dw.data(), DType::F32, {H}), false);
      if (accumulate)
        for (size_t k = 0; k < size_t(H); ++k) want_dw[k] += dw0[k];
      // (CPU accumulate would round x + sum once in double; adding in f32 here differs by
      // rounding only, far under the tolerance.)

      DeviceBuffer d_x = to_device(x), d_dy = to_device(dy), d_w = to_device(w), d_dx = poisoned_bf16(nx);
      DeviceBuffer d_dw = accumulate ? to_device(dw0) : poisoned_f32(size_t(H));
      DeviceBuffer scratch(cuda::rmsnorm_backward_scratch_bytes(n, H));
      cuda::launch_rmsnorm_backward(bf16(d_x), d_w.as<float>(), bf16(d_dy), bf16(d_dx), d_dw.as<float>(), accumulate,
                                    scratch.as<float>(), n, H, eps, offset, nullptr);
      expect_close(dims("rmsnorm_backward dx", {n, H}), bf16_to_f32(from_device<uint16_t>(d_dx, nx)), want_dx,
                   kTolBf16);
      expect_close(dims(accumulate ? "rmsnorm_backward dw (+=)" : "rmsnorm_backward dw", {n, H}),
                   from_device<float>(d_dw, size_t(H)), want_dw, kTolF32);
    }
}

const int64_t kElementCounts[] = {1, 3, 17, 127, 130, 4096, 130 * 4096 + 3};

TEST(CudaOps, Swiglu) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(103);
  for (int64_t n : kElementCounts) {
    auto g = random_bf16(rng, size_t(n), -6.0f, 6.0f), u = random_bf16(rng, size_t(n), -2.0f, 2.0f);
    auto gf = bf16_to_f32(g), uf = bf16_to_f32(u);
    std::vector<float> want(static_cast<size_t>(n));
    ops::swiglu(Tensor(gf.data(), DType::F32, {n}), Tensor(uf.data(), DType::F32, {n}),
                Tensor(want.data(), DType::F32, {n}));
    DeviceBuffer d_g = to_device(g), d_u = to_device(u), d_out = poisoned_bf16(size_t(n));
    cuda::launch_swiglu(bf16(d_g), bf16(d_u), bf16(d_out), n, nullptr);
    expect_close(dims("swiglu", {n}), bf16_to_f32(from_device<uint16_t>(d_out, size_t(n))), want, kTolBf16);
  }
}

TEST(CudaOps, SwigluBackward) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(104);
  for (int64_t n : kElementCounts) {
    auto g = random_bf16(rng, size_t(n), -6.0f, 6.0f), u = random_bf16(rng, size_t(n), -2.0f, 2.0f);
    auto d = random_bf16(rng, size_t(n), -1.0f, 1.0f);
    auto gf = bf16_to_f32(g), uf = bf16_to_f32(u), df = bf16_to_f32(d);
    std::vector<float> want_dg(static_cast<size_t>(n)), want_du(static_cast<size_t>(n));
    ops::swiglu_backward(Tensor(gf.data(), DType::F32, {n}), Tensor(uf.data(), DType::F32, {n}),
                         Tensor(df.data(), DType::F32, {n}), Tensor(want_dg.data(), DType::F32, {n}),
                         Tensor(want_du.data(), DType::F32, {n}));
    DeviceBuffer d_g = to_device(g), d_u = to_device(u), d_d = to_device(d);
    DeviceBuffer d_dg = poisoned_bf16(size_t(n)), d_du = poisoned_bf16(size_t(n));
    cuda::launch_swiglu_backward(bf16(d_g), bf16(d_u), bf16(d_d), bf16(d_dg), bf16(d_du), n, nullptr);
    expect_close(dims("swiglu_backward dgate", {n}), bf16_to_f32(from_device<uint16_t>(d_dg, size_t(n))), want_dg,
                 kTolBf16);
    expect_close(dims("swiglu_backward dup", {n}), bf16_to_f32(from_device<uint16_t>(d_du, size_t(n))), want_du,
                 kTolBf16);
  }
}

const int64_t kVocabs[] = {1, 3, 17, 130, 32000};

TEST(CudaOps, Embedding) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(105);
  for (int64_t V : kVocabs)
    for (int64_t n : kRows)
      for (int H : {1, 17, 130, 4096}) {
        if (V * H > (int64_t(1) << 26)) continue;  // keep the host reference small
        auto table = random_bf16(rng, size_t(V * H), -1.0f, 1.0f);
        std::vector<int32_t> ids(static_cast<size_t>(n));
        for (auto& id : ids) id = int32_t(rng.below(uint64_t(V)));
        cuda::check_token_ids(ids.data(), n, V);
        auto tf = bf16_to_f32(table);
        std::vector<float> want(size_t(n * H));
        ops::embedding(Tensor(tf.data(), DType::F32, {V, H}), ids.data(), n, Tensor(want.data(), DType::F32, {n, H}));
        DeviceBuffer d_t = to_device(table), d_ids = to_device(ids), d_out = poisoned_bf16(size_t(n * H));
        cuda::launch_embedding(bf16(d_t), d_ids.as<int32_t>(), bf16(d_out), n, V, H, nullptr);
        // A gather copies bits: exact.
        expect_close(dims("embedding (exact) V n H", {V, n, H}),
                     bf16_to_f32(from_device<uint16_t>(d_out, size_t(n * H))), want, 0.0);
      }
}

TEST(CudaOps, EmbeddingBackward) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(106);
  for (int64_t V : kVocabs)
    for (int64_t n : kRows)
      for (int H : {1, 17, 130, 4096}) {
        if (V * H > (int64_t(1) << 26)) continue;
        // Few distinct ids for small V: repeated ids must add up, not overwrite.
        std::vector<int32_t> ids(static_cast<size_t>(n));
        for (auto& id : ids) id = int32_t(rng.below(uint64_t(V)));
        auto dout = random_bf16(rng, size_t(n * H), -1.0f, 1.0f);
        auto dtable0 = random_f32(rng, size_t(V * H), -1.0f, 1.0f);
        auto doutf = bf16_to_f32(dout);
        std::vector<float> want = dtable0;
        ops::embedding_backward(ids.data(), n, Tensor(doutf.data(), DType::F32, {n, H}),
                                Tensor(want.data(), DType::F32, {V, H}));
        DeviceBuffer d_ids = to_device(ids), d_dout = to_device(dout), d_dt = to_device(dtable0);
        cuda::launch_embedding_backward(d_ids.as<int32_t>(), bf16(d_dout), d_dt.as<float>(), n, V, H, nullptr);
        expect_close(dims("embedding_backward (+=) V n H", {V, n, H}), from_device<float>(d_dt, size_t(V * H)), want,
                     kTolF32);
      }
}

TEST(CudaOps, EmbeddingRejectsBadIds) {
  // Host-side validation: needs no device.
  const int32_t ids[] = {0, 5, 17};
  EXPECT_THROW(cuda::check_token_ids(ids, 3, 17), Error);
  EXPECT_NO_THROW(cuda::check_token_ids(ids, 2, 17));
}

}  // namespace
}  // namespace brisk::ops_test
