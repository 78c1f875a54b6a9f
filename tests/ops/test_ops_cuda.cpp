// CUDA op parity: every kernel against the CPU reference op (backend/ops.h) on fresh random
// inputs at odd sizes, outputs poisoned with NaN first, as llama.cpp's test-backend-ops checks
// each backend against the CPU. Label `gpu`: runs on the GPU machine only; skips (never passes)
// where there is no CUDA device.
//
// Tolerances, on max|a-b| / max|b|: bf16 outputs 1e-2 (one bf16 rounding is <= 2^-9 relative);
// f32 outputs accumulated in a different order than the CPU's double sums 1e-5; copies exact.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cuda/adamw.h"
#include "backend/cuda/cross_entropy.h"
#include "backend/cuda/elementwise.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/rmsnorm.h"
#include "backend/cuda/rope.h"
#include "backend/cuda/swiglu.h"
#include "backend/ops.h"
#include "train/optimizer.h"
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
  // No H = 1: there dx = r*dy*g*(1 - x^2 r^2) is a difference of two nearly equal terms (about
  // eps / x^2 of them), ill-conditioned in fp32 whatever the kernel does.
  for (int64_t n : kRows)
    for (int H : {3, 17, 127, 130, 4096}) {
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

// Without dw (LoRA training) and with H a multiple of 8 the warp-per-row kernel runs: dx alone,
// and dx plus a residual gradient written in place (dx_residual aliasing dx).
TEST(CudaOps, RmsnormBackwardWithoutDw) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(103);
  for (int64_t n : kRows)
    for (int H : {8, 136, 2048, 4096, 130}) {  // 130: the block kernel (not a multiple of 8)
      const float eps = 1e-5f, offset = (H % 16) ? 1.0f : 0.0f;
      const size_t nx = size_t(n) * size_t(H);
      auto x = random_bf16(rng, nx, -2.0f, 2.0f), dy = random_bf16(rng, nx, -1.0f, 1.0f),
           res = random_bf16(rng, nx, -1.0f, 1.0f);
      auto w = random_f32(rng, size_t(H), 0.5f, 1.5f);
      auto xf = bf16_to_f32(x), dyf = bf16_to_f32(dy), resf = bf16_to_f32(res);
      std::vector<float> want_dx(nx), dw(static_cast<size_t>(H));
      ops::rmsnorm_backward(Tensor(xf.data(), DType::F32, {n, H}), Tensor(w.data(), DType::F32, {H}), eps, offset,
                            Tensor(dyf.data(), DType::F32, {n, H}), Tensor(want_dx.data(), DType::F32, {n, H}),
                            Tensor(dw.data(), DType::F32, {H}), false);
      DeviceBuffer d_x = to_device(x), d_dy = to_device(dy), d_w = to_device(w), d_dx = poisoned_bf16(nx);
      cuda::launch_rmsnorm_backward(bf16(d_x), d_w.as<float>(), bf16(d_dy), bf16(d_dx), nullptr, false, nullptr, n, H,
                                    eps, offset, nullptr);
      expect_close(dims("rmsnorm_backward dx, no dw", {n, H}), bf16_to_f32(from_device<uint16_t>(d_dx, nx)), want_dx,
                   kTolBf16);
      DeviceBuffer d_acc = to_device(res);  // dx written over the residual gradient it adds
      cuda::launch_rmsnorm_backward(bf16(d_x), d_w.as<float>(), bf16(d_dy), bf16(d_acc), nullptr, false, nullptr, n,
                                    H, eps, offset, nullptr, bf16(d_acc));
      for (size_t i = 0; i < nx; ++i) want_dx[i] += resf[i];
      expect_close(dims("rmsnorm_backward dx + residual in place", {n, H}),
                   bf16_to_f32(from_device<uint16_t>(d_acc, nx)), want_dx, kTolBf16);
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

// The bias gradient of full fine-tuning: db += column sums of dy, against ops::bias_backward.
TEST(CudaOps, ColumnSumsAddIsTheBiasBackward) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(107);
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(17), int64_t(130), int64_t(1000)})
    for (int H : kWidths) {
      auto dy = random_bf16(rng, size_t(n * H), -1.0f, 1.0f);
      auto db0 = random_f32(rng, size_t(H), -1.0f, 1.0f);
      auto dyf = bf16_to_f32(dy);
      std::vector<float> want = db0;
      ops::bias_backward(Tensor(dyf.data(), DType::F32, {n, H}), Tensor(want.data(), DType::F32, {H}),
                         /*accumulate=*/true);
      DeviceBuffer d_dy = to_device(dy), d_db = to_device(db0);
      cuda::launch_column_sums_add(bf16(d_dy), n, H, d_db.as<float>(), nullptr);
      expect_close(dims("column_sums_add (+=) n H", {n, H}), from_device<float>(d_db, size_t(H)), want, kTolF32);
    }
}

TEST(CudaOps, EmbeddingRejectsBadIds) {
  // Host-side validation: needs no device.
  const int32_t ids[] = {0, 5, 17};
  EXPECT_THROW(cuda::check_token_ids(ids, 3, 17), Error);
  EXPECT_NO_THROW(cuda::check_token_ids(ids, 2, 17));
}

// Llama-3-style frequencies (base 500000) for n_freq of a head_dim; n_freq < head_dim / 2 is
// partial rotary (the dims past 2 * n_freq stay as they are).
std::vector<float> rope_inv_freq(int head_dim, int n_freq) {
  std::vector<float> f(static_cast<size_t>(n_freq));
  for (int i = 0; i < n_freq; ++i) f[size_t(i)] = float(1.0 / std::pow(500000.0, 2.0 * i / double(head_dim)));
  return f;
}

void check_rope(bool backward, uint64_t seed) {
  Rng rng(seed);
  struct Case {
    int64_t n;
    int heads, head_dim, n_freq;
  };
  const Case cases[] = {{1, 1, 2, 1},   {3, 3, 64, 32},   {17, 8, 128, 64},  {127, 2, 130, 65},
                        {130, 4, 128, 32}, {5, 1, 4096, 2048}, {1, 32, 128, 64}};
  for (const Case& c : cases) {
    const size_t nx = size_t(c.n) * size_t(c.heads) * size_t(c.head_dim);
    auto x = random_bf16(rng, nx, -2.0f, 2.0f);
    std::vector<int32_t> pos(static_cast<size_t>(c.n));
    for (auto& p : pos) p = int32_t(rng.below(131072));  // long-context positions: large angles
    const auto inv_freq = rope_inv_freq(c.head_dim, c.n_freq);
    const float mscale = c.n % 2 ? 1.0f : 1.2f;
    std::vector<float> want = bf16_to_f32(x);
    const Tensor t(want.data(), DType::F32, {c.n, c.heads, c.head_dim});
    if (backward)
      ops::rope_backward(t, pos.data(), inv_freq.data(), c.n_freq, mscale);
    else
      ops::rope(t, pos.data(), inv_freq.data(), c.n_freq, mscale);
    // In place, so no poisoning: every element is compared, the untouched tail dims included.
    DeviceBuffer d_x = to_device(x), d_pos = to_device(pos), d_f = to_device(inv_freq);
    if (backward)
      cuda::launch_rope_backward(bf16(d_x), d_pos.as<int32_t>(), d_f.as<float>(), c.n, c.heads, c.head_dim, c.n_freq,
                                 mscale, nullptr);
    else
      cuda::launch_rope(bf16(d_x), d_pos.as<int32_t>(), d_f.as<float>(), c.n, c.heads, c.head_dim, c.n_freq, mscale,
                        nullptr);
    expect_close(dims(backward ? "rope_backward n heads hd n_freq" : "rope n heads hd n_freq",
                      {c.n, c.heads, c.head_dim, c.n_freq}),
                 bf16_to_f32(from_device<uint16_t>(d_x, nx)), want, kTolBf16);
  }
}

TEST(CudaOps, Rope) {
  BRISK_REQUIRE_CUDA_DEVICE();
  check_rope(false, 107);
}

TEST(CudaOps, RopeBackward) {
  BRISK_REQUIRE_CUDA_DEVICE();
  check_rope(true, 108);
}

// Three steps of AdamW against train::AdamW on identical f32 inputs. The kernel reproduces the
// CPU's rounding step by step, so the expected difference is 0; the tolerance allows 1e-6.
TEST(CudaOps, AdamW) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(109);
  constexpr double kTolAdam = 1e-6;
  for (int64_t n : kElementCounts)
    for (int variant = 0; variant < 2; ++variant) {
      // variant 0: HF defaults with decay; variant 1: beta1 0.4 (ATen's other lerp branch), no decay.
      train::AdamWOptions opt;
      opt.lr = 2e-3;
      opt.weight_decay = 0.01;
      if (variant) opt.beta1 = 0.4, opt.beta2 = 0.95, opt.eps = 1e-6;
      const bool decay = variant == 0;
      cuda::AdamWHyper h{opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay};
      const size_t un = static_cast<size_t>(n);
      std::vector<float> p = random_f32(rng, un, -1.0f, 1.0f), g(un);
      DeviceBuffer d_p = to_device(p), d_g(un * 4), d_m = to_device(std::vector<float>(un, 0.0f)),
                   d_v = to_device(std::vector<float>(un, 0.0f));
      train::AdamW cpu({train::Param{"w", Tensor(p.data(), DType::F32, {n}), Tensor(g.data(), DType::F32, {n}),
                                     decay}});
      for (int64_t step = 1; step <= 3; ++step) {
        for (auto& x : g) x = rng.uniform(-0.1f, 0.1f) * (1 + float(step));
        d_g.upload(g.data(), un * 4);
        cpu.step(opt);
        cuda::launch_adamw(d_p.as<float>(), d_g.as<float>(), d_m.as<float>(), d_v.as<float>(), n, h, step, decay,
                           nullptr);
      }
      auto state = cpu.state_tensors();
      const std::vector<float> want_m(state[0].second.f32(), state[0].second.f32() + un);
      const std::vector<float> want_v(state[1].second.f32(), state[1].second.f32() + un);
      const auto got_p = from_device<float>(d_p, un), got_m = from_device<float>(d_m, un),
                 got_v = from_device<float>(d_v, un);
      size_t inexact = 0;
      for (size_t i = 0; i < un; ++i) inexact += got_p[i] != p[i];
      std::printf("  adamw [%lld] variant %d: %zu of %zu parameters differ from the CPU in any bit\n",
                  static_cast<long long>(n), variant, inexact, un);
      expect_close(dims("adamw param after 3 steps", {n}), got_p, p, kTolAdam);
      expect_close(dims("adamw exp_avg", {n}), got_m, want_m, kTolAdam);
      expect_close(dims("adamw exp_avg_sq", {n}), got_v, want_v, kTolAdam);
    }
}

TEST(CudaOps, AdamWRejectsBadHyperparameters) {
  cuda::AdamWHyper h;
  h.beta1 = 1.0;
  EXPECT_THROW(cuda::launch_adamw(nullptr, nullptr, nullptr, nullptr, 1, h, 1, true, nullptr), Error);
}

// Per-row CPU losses: ops::cross_entropy on one-row views (it returns the row sum).
std::vector<float> cpu_cross_entropy(std::vector<float> logits, const std::vector<int32_t>& labels, int64_t V,
                                     float grad_scale, std::vector<float>* dlogits) {
  const int64_t n = int64_t(labels.size());
  std::vector<float> loss(labels.size());
  dlogits->assign(logits.size(), 0.0f);
  for (int64_t r = 0; r < n; ++r) {
    const Tensor row(logits.data() + r * V, DType::F32, {1, V});
    loss[size_t(r)] = float(ops::cross_entropy(row, &labels[size_t(r)],
                                               Tensor(dlogits->data() + r * V, DType::F32, {1, V}), grad_scale));
  }
  return loss;
}

void check_cross_entropy(bool bf16_logits, uint64_t seed) {
  Rng rng(seed);
  const int64_t vocabs[] = {1, 3, 17, 1000, 32000, 128256};
  for (int64_t V : vocabs)
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(17), int64_t(130)}) {
      if (n * V > 20'000'000) continue;  // host reference time and memory
      const size_t nv = size_t(n * V);
      std::vector<int32_t> labels(static_cast<size_t>(n));
      int64_t valid = 0;
      for (size_t r = 0; r < labels.size(); ++r) {
        labels[r] = (n > 1 && r % 4 == 1) ? -100 : int32_t(rng.below(uint64_t(V)));
        valid += labels[r] != -100;
      }
      cuda::check_labels(labels.data(), n, V);
      const float grad_scale = 1.0f / float(valid);
      std::vector<float> logits_f;
      std::vector<uint16_t> logits_b;
      if (bf16_logits) {
        logits_b = random_bf16(rng, nv, -8.0f, 8.0f);
        logits_f = bf16_to_f32(logits_b);
      } else {
        logits_f = random_f32(rng, nv, -8.0f, 8.0f);
      }
      std::vector<float> want_d;
      const auto want_loss = cpu_cross_entropy(logits_f, labels, V, grad_scale, &want_d);

      DeviceBuffer d_labels = to_device(labels), d_loss = poisoned_f32(size_t(n));
      std::vector<float> got_d;
      if (bf16_logits) {
        // In place: the gradient overwrites the logits (the training layout).
        DeviceBuffer d_logits = to_device(logits_b);
        cuda::launch_cross_entropy(bf16(d_logits), d_labels.as<int32_t>(), d_loss.as<float>(), bf16(d_logits), n, V,
                                   grad_scale, nullptr);
        got_d = bf16_to_f32(from_device<uint16_t>(d_logits, nv));
      } else {
        DeviceBuffer d_logits = to_device(logits_f), d_d = poisoned_f32(nv);
        cuda::launch_cross_entropy(d_logits.as<float>(), d_labels.as<int32_t>(), d_loss.as<float>(),
                                   d_d.as<float>(), n, V, grad_scale, nullptr);
        got_d = from_device<float>(d_d, nv);
      }
      const char* kind = bf16_logits ? "bf16, in place" : "f32";
      expect_close(dims((std::string("cross_entropy loss ") + kind + " n V").c_str(), {n, V}),
                   from_device<float>(d_loss, size_t(n)), want_loss, kTolF32);
      expect_close(dims((std::string("cross_entropy dlogits ") + kind + " n V").c_str(), {n, V}), got_d, want_d,
                   bf16_logits ? kTolBf16 : kTolF32);
    }
}

TEST(CudaOps, CrossEntropyF32) {
  BRISK_REQUIRE_CUDA_DEVICE();
  check_cross_entropy(false, 110);
}

TEST(CudaOps, CrossEntropyBf16InPlace) {
  BRISK_REQUIRE_CUDA_DEVICE();
  check_cross_entropy(true, 111);
}

TEST(CudaOps, CrossEntropyRejectsBadLabels) {
  const int32_t labels[] = {-100, 3, 17};
  EXPECT_THROW(cuda::check_labels(labels, 3, 17), Error);
  EXPECT_NO_THROW(cuda::check_labels(labels, 2, 17));
}

}  // namespace
}  // namespace brisk::ops_test
