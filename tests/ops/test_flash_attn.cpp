// Flash attention (backend/cuda/flash_attn.h) against the CPU ops attention_train_forward /
// attention_train_backward on the same bf16 values: out, lse, dq, dk, dv. Packed variable-length
// segments (lengths 1, 16, 64, 65, 130, 253, 1000: single-token segments, tile edges, a long
// one), GQA groups 1, 4 and 4 at 32 heads, head_dim 16/32/64/128 (16: the tiny test presets;
// the kernels' narrowest tiles), window 0 and 16, q/k/v packed or as column slices of one fused
// QKV buffer. Every output starts as NaN.
//
// Tolerances on max|a-b| / max|b|: bf16 outputs (out, dq, dk, dv) 1e-2: the kernel rounds P and
// dS to bf16 for the tensor-core products (relative 2^-9 each) and rounds its outputs once;
// lse (f32) 1e-5: the same scores summed in another order, f32 sums instead of double.
//
// The backward is fed the CPU forward's own out (rounded to bf16) and lse, so a forward error
// cannot hide or cause a backward one. The Scalar twin (same tiles, fp32 FMAs instead of WMMA)
// runs on a subset with the same checks: when only the tensor-core run fails, the fault is in
// the WMMA fragment layouts, not in the tiling or the masks. FlashAttnImpl::Mma (mma.sync
// kernels, flash_attn_mma.cu) runs the whole sweep with the same tolerances.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/cuda/flash_attn.h"
#include "backend/ops.h"
#include "core/error.h"
#include "ops_test_util.h"

namespace brisk::ops_test {
namespace {

constexpr double kTolBf16 = 1e-2;
constexpr double kTolLse = 1e-5;

using cuda::FlashAttnImpl;
using cuda::FlashAttnShape;

struct Case {
  std::vector<int32_t> cu_seqlens;
  int n_heads, n_kv_heads, head_dim, window;
  bool fused_qkv;  // q, k, v as column slices of one [T, (nh + 2 nkv) * hd] buffer
  float scale_mul = 1.0f;  // scale = scale_mul / sqrt(hd); 12 makes rows peaked (scores' std ~16)
};

const char* impl_name(FlashAttnImpl impl) {
  switch (impl) {
    case FlashAttnImpl::TensorCores: return "tc";
    case FlashAttnImpl::Scalar: return "scalar";
    case FlashAttnImpl::Mma: return "mma";
  }
  return "?";
}

std::string describe(const Case& c, FlashAttnImpl impl) {
  std::string segs;
  for (size_t i = 0; i < c.cu_seqlens.size(); ++i) segs += (i ? "," : "") + std::to_string(c.cu_seqlens[i]);
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s hd%d %d/%d w%d%s x%g cu{%s}", impl_name(impl),
                c.head_dim, c.n_heads, c.n_kv_heads, c.window, c.fused_qkv ? " fused" : "", c.scale_mul, segs.c_str());
  return buf;
}

__nv_bfloat16* bf16(const DeviceBuffer& d) { return d.as<__nv_bfloat16>(); }

std::vector<float> round_to_bf16(const std::vector<float>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = brisk::bf16_to_f32(f32_to_bf16(v[i]));
  return out;
}

void run_case(const Case& c, FlashAttnImpl impl, Rng& rng) {
  const int64_t T = c.cu_seqlens.back();
  const int n_seg = int(c.cu_seqlens.size()) - 1;
  const int nh = c.n_heads, nkv = c.n_kv_heads, hd = c.head_dim;
  int max_seqlen = 0;
  for (int s = 0; s < n_seg; ++s) max_seqlen = std::max(max_seqlen, c.cu_seqlens[size_t(s) + 1] - c.cu_seqlens[size_t(s)]);
  const size_t nq = size_t(T) * nh * hd, nk = size_t(T) * nkv * hd, nrow = size_t(T) * nh;
  const float scale = c.scale_mul / std::sqrt(float(hd));

  // Inputs. |q.k| * scale has a standard deviation near 1.3: peaked and flat rows both occur.
  auto q = random_bf16(rng, nq, -2.0f, 2.0f), k = random_bf16(rng, nk, -2.0f, 2.0f);
  auto v = random_bf16(rng, nk, -1.0f, 1.0f), dout = random_bf16(rng, nq, -1.0f, 1.0f);
  auto qf = bf16_to_f32(q), kf = bf16_to_f32(k), vf = bf16_to_f32(v), doutf = bf16_to_f32(dout);

  // CPU reference.
  std::vector<float> want_out(nq), want_lse(nrow), want_dq(nq), want_dk(nk), want_dv(nk);
  auto t_q = [&](std::vector<float>& x) { return Tensor(x.data(), DType::F32, {T, nh, hd}); };
  auto t_k = [&](std::vector<float>& x) { return Tensor(x.data(), DType::F32, {T, nkv, hd}); };
  ops::attention_train_forward(t_q(qf), t_k(kf), t_k(vf), c.cu_seqlens.data(), n_seg, t_q(want_out),
                               Tensor(want_lse.data(), DType::F32, {T, nh}), scale, c.window);
  std::vector<float> out_for_bwd = round_to_bf16(want_out);  // what a bf16 forward hands the backward
  ops::attention_train_backward(t_q(qf), t_k(kf), t_k(vf), t_q(out_for_bwd), Tensor(want_lse.data(), DType::F32, {T, nh}),
                                t_q(doutf), c.cu_seqlens.data(), n_seg, t_q(want_dq), t_k(want_dk), t_k(want_dv), scale,
                                c.window);

  // Device inputs: packed, or interleaved per token into one fused QKV buffer.
  FlashAttnShape shape;
  shape.tokens = T;
  shape.n_seg = n_seg;
  shape.max_seqlen = max_seqlen;
  shape.n_heads = nh;
  shape.n_kv_heads = nkv;
  shape.head_dim = hd;
  shape.scale = scale;
  shape.window = c.window;
  DeviceBuffer d_q, d_k, d_v, d_qkv;
  const __nv_bfloat16 *qp, *kp, *vp;
  if (c.fused_qkv) {
    const int64_t width = int64_t(nh + 2 * nkv) * hd;
    std::vector<uint16_t> qkv(size_t(T * width));
    for (int64_t t = 0; t < T; ++t) {
      std::copy_n(q.begin() + t * nh * hd, nh * hd, qkv.begin() + t * width);
      std::copy_n(k.begin() + t * nkv * hd, nkv * hd, qkv.begin() + t * width + nh * hd);
      std::copy_n(v.begin() + t * nkv * hd, nkv * hd, qkv.begin() + t * width + (nh + nkv) * hd);
    }
    d_qkv = to_device(qkv);
    qp = bf16(d_qkv);
    kp = qp + int64_t(nh) * hd;
    vp = qp + int64_t(nh + nkv) * hd;
    shape.q_stride = shape.k_stride = shape.v_stride = width;
  } else {
    d_q = to_device(q);
    d_k = to_device(k);
    d_v = to_device(v);
    qp = bf16(d_q);
    kp = bf16(d_k);
    vp = bf16(d_v);
  }
  DeviceBuffer d_cu = to_device(c.cu_seqlens);
  const std::string name = describe(c, impl);

  // Forward.
  DeviceBuffer d_out = poisoned_bf16(nq), d_lse = poisoned_f32(nrow);
  cuda::launch_flash_attn_forward(qp, kp, vp, d_cu.as<int32_t>(), shape, bf16(d_out), d_lse.as<float>(), nullptr, impl);
  expect_close(name + " out", bf16_to_f32(from_device<uint16_t>(d_out, nq)), want_out, kTolBf16);
  expect_close(name + " lse", from_device<float>(d_lse, nrow), want_lse, kTolLse);

  // Backward, from the CPU's out and lse; scratch poisoned too (the kernels must initialise it).
  std::vector<uint16_t> out_bf16(nq);
  for (size_t i = 0; i < nq; ++i) out_bf16[i] = f32_to_bf16(want_out[i]);
  DeviceBuffer d_out_ref = to_device(out_bf16), d_lse_ref = to_device(want_lse), d_dout = to_device(dout);
  const size_t scratch_bytes = cuda::flash_attn_backward_scratch_bytes(shape);
  DeviceBuffer d_scratch = poisoned_f32(scratch_bytes / sizeof(float));
  DeviceBuffer d_dq = poisoned_bf16(nq), d_dk = poisoned_bf16(nk), d_dv = poisoned_bf16(nk);
  cuda::launch_flash_attn_backward(qp, kp, vp, bf16(d_out_ref), d_lse_ref.as<float>(), bf16(d_dout), d_cu.as<int32_t>(),
                                   shape, bf16(d_dq), bf16(d_dk), bf16(d_dv), d_scratch.data(), nullptr, impl);
  expect_close(name + " dq", bf16_to_f32(from_device<uint16_t>(d_dq, nq)), want_dq, kTolBf16);
  expect_close(name + " dk", bf16_to_f32(from_device<uint16_t>(d_dk, nk)), want_dk, kTolBf16);
  expect_close(name + " dv", bf16_to_f32(from_device<uint16_t>(d_dv, nk)), want_dv, kTolBf16);
}

// Segment layouts: odd lengths and 1-token segments {1, 16, 130, 253}; one long segment; tile
// edges {65, 64, 1} (64 = the kernels' tile).
const std::vector<std::vector<int32_t>> kSegments = {{0, 1, 17, 147, 400}, {0, 1000}, {0, 65, 129, 130}};
const int kHeadDims[] = {16, 32, 64, 128};
const int kGroups[][2] = {{4, 4}, {8, 2}, {32, 8}};

// The sweep: every head_dim x GQA x segment layout; window and fused QKV alternate so that each
// appears with every head_dim, group and layout (hd 16 and 64 take the window with the odd
// lengths and the tile edges, hd 32 and 128 with the long segment).
std::vector<Case> sweep() {
  std::vector<Case> cases;
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 3; ++b)
      for (int s = 0; s < 3; ++s)
        cases.push_back(Case{kSegments[size_t(s)], kGroups[b][0], kGroups[b][1], kHeadDims[a],
                             (a + s + 1) % 2 ? 16 : 0, (b + s) % 2 == 1});
  return cases;
}

TEST(CudaFlashAttn, TensorCores) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(501);
  for (const Case& c : sweep()) run_case(c, FlashAttnImpl::TensorCores, rng);
}

// The mma.sync kernels (flash_attn_mma.cu), forward and backward, on the same sweep and
// tolerances.
TEST(CudaFlashAttn, Mma) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(506);
  for (const Case& c : sweep()) run_case(c, FlashAttnImpl::Mma, rng);
}

TEST(CudaFlashAttn, ScalarTwin) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(502);
  const std::vector<Case> cases = {
      {{0, 1, 17, 147, 400}, 4, 4, 32, 0, false},  {{0, 1, 17, 147, 400}, 8, 2, 64, 16, true},
      {{0, 65, 129, 130}, 32, 8, 128, 0, true},    {{0, 1000}, 8, 2, 128, 16, false},
      {{0, 1000}, 4, 4, 64, 0, false},             {{0, 1, 17, 147, 400}, 8, 2, 16, 16, false},
      {{0, 65, 129, 130}, 32, 8, 16, 0, true},     {{0, 1000}, 4, 4, 16, 0, true},
  };
  for (const Case& c : cases) run_case(c, FlashAttnImpl::Scalar, rng);
}

// A window wider than the segments is no window: same results as window 0 (checks the tile
// range arithmetic at the other extreme), and a 1-token window is attention to oneself.
TEST(CudaFlashAttn, WindowExtremes) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(503);
  for (FlashAttnImpl impl : {FlashAttnImpl::TensorCores, FlashAttnImpl::Mma}) {
    run_case(Case{{0, 1, 17, 147, 400}, 8, 2, 64, 5000, false}, impl, rng);
    run_case(Case{{0, 1, 17, 147, 400}, 8, 2, 64, 1, true}, impl, rng);
    run_case(Case{{0, 300}, 4, 4, 128, 100, false}, impl, rng);
    run_case(Case{{0, 300}, 4, 4, 64, 200, true}, impl, rng);  // window > one 128-row query tile
    run_case(Case{{0, 1, 17, 147, 400}, 8, 2, 16, 1, false}, impl, rng);
    run_case(Case{{0, 300}, 4, 4, 16, 200, true}, impl, rng);
  }
}

// Peaked rows: scores spread ~16 wide, so running maxima jump by more than the forward's slack
// (8) mid-row and the O accumulator is rescaled; a missed rescale fails here at ~1e0.
TEST(CudaFlashAttn, PeakedScores) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(505);
  for (FlashAttnImpl impl : {FlashAttnImpl::TensorCores, FlashAttnImpl::Scalar, FlashAttnImpl::Mma}) {
    run_case(Case{{0, 1, 17, 147, 400}, 8, 2, 64, 0, false, 12.0f}, impl, rng);
    run_case(Case{{0, 1000}, 4, 4, 128, 0, true, 12.0f}, impl, rng);
    run_case(Case{{0, 65, 129, 130}, 32, 8, 32, 16, false, 12.0f}, impl, rng);
    run_case(Case{{0, 1, 17, 147, 400}, 8, 2, 16, 0, true, 12.0f}, impl, rng);
  }
}

// max_seqlen is the caller's promise (cu_seqlens lives on the device): a segment longer than
// it must come back as NaN rows past max_seqlen rounded up to the forward's query tile (64 for
// TensorCores, 128 for Mma), never stale.
void check_undersized_max_seqlen(FlashAttnImpl impl, int64_t T, int tile, int hd, Rng& rng) {
  const int nh = 2;
  const size_t n = size_t(T) * nh * hd;
  auto q = random_bf16(rng, n, -1.0f, 1.0f), k = random_bf16(rng, n, -1.0f, 1.0f), v = random_bf16(rng, n, -1.0f, 1.0f);
  FlashAttnShape s;
  s.tokens = T;
  s.n_seg = 1;
  s.max_seqlen = 40;  // one query tile covers rows 0 .. tile - 1
  s.n_heads = s.n_kv_heads = nh;
  s.head_dim = hd;
  s.scale = 0.2f;
  DeviceBuffer d_q = to_device(q), d_k = to_device(k), d_v = to_device(v);
  DeviceBuffer d_cu = to_device(std::vector<int32_t>{0, int32_t(T)});
  DeviceBuffer d_out = to_device(std::vector<uint16_t>(n, 0)), d_lse = to_device(std::vector<float>(size_t(T) * nh, 0.0f));
  cuda::launch_flash_attn_forward(bf16(d_q), bf16(d_k), bf16(d_v), d_cu.as<int32_t>(), s, bf16(d_out), d_lse.as<float>(),
                                  nullptr, impl);
  auto out = bf16_to_f32(from_device<uint16_t>(d_out, n));
  auto lse = from_device<float>(d_lse, size_t(T) * nh);
  int64_t finite_rows = 0, nan_rows = 0;
  for (int64_t t = 0; t < T; ++t)
    for (int h = 0; h < nh; ++h) {
      const float o = out[size_t((t * nh + h) * hd)], l = lse[size_t(t * nh + h)];
      if (t < tile) finite_rows += std::isfinite(o) && std::isfinite(l);
      else nan_rows += std::isnan(o) && std::isnan(l);
    }
  std::printf("  %s hd%d: rows 0..%d finite: %lld of %d, rows %d..%lld NaN: %lld of %lld\n", impl_name(impl), hd,
              tile - 1, (long long)finite_rows, tile * nh, tile, (long long)(T - 1), (long long)nan_rows,
              (long long)((T - tile) * nh));
  EXPECT_EQ(finite_rows, tile * nh);
  EXPECT_EQ(nan_rows, (T - tile) * nh);
}

TEST(CudaFlashAttn, UndersizedMaxSeqlenGivesNaN) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(504);
  check_undersized_max_seqlen(FlashAttnImpl::TensorCores, 100, 64, 32, rng);
  check_undersized_max_seqlen(FlashAttnImpl::Mma, 200, 128, 32, rng);
  check_undersized_max_seqlen(FlashAttnImpl::TensorCores, 100, 64, 16, rng);
  check_undersized_max_seqlen(FlashAttnImpl::Mma, 200, 128, 16, rng);
}

// Host-side validation: runs everywhere, before any CUDA call.
TEST(CudaFlashAttn, RejectsBadShapes) {
  FlashAttnShape ok;
  ok.tokens = 10;
  ok.n_seg = 1;
  ok.max_seqlen = 10;
  ok.n_heads = 8;
  ok.n_kv_heads = 2;
  ok.head_dim = 64;
  EXPECT_NO_THROW(cuda::check_flash_attn_shape(ok));

  auto expect_error = [](const FlashAttnShape& s, const char* needle) {
    try {
      cuda::check_flash_attn_shape(s);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      std::printf("  rejected: %s\n", e.what());
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  FlashAttnShape s = ok;
  for (int hd : {16, 32, 128}) {
    s.head_dim = hd;
    EXPECT_NO_THROW(cuda::check_flash_attn_shape(s)) << "head_dim " << hd;
  }
  s.head_dim = 80;
  expect_error(s, "head_dim 80 is not supported (16, 32, 64 or 128)");
  s.head_dim = 8;
  expect_error(s, "head_dim 8 ");
  s = ok;
  s.n_kv_heads = 3;
  expect_error(s, "not a multiple of 3 kv heads");
  s = ok;
  s.q_stride = 8 * 64 - 8;  // narrower than the heads
  expect_error(s, "q row stride 504");
  s = ok;
  s.k_stride = 2 * 64 + 4;  // not 16-byte rows
  expect_error(s, "k row stride 132");
  s = ok;
  s.n_seg = 0;
  expect_error(s, "10 tokens in 0 segments");

  // The launchers check before touching the device (null pointers are never reached).
  s = ok;
  s.head_dim = 96;
  EXPECT_THROW(cuda::launch_flash_attn_forward(nullptr, nullptr, nullptr, nullptr, s, nullptr, nullptr, nullptr),
               Error);
  EXPECT_THROW(cuda::launch_flash_attn_backward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, s,
                                                nullptr, nullptr, nullptr, nullptr, nullptr),
               Error);
}

}  // namespace
}  // namespace brisk::ops_test
