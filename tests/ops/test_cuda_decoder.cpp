// GPU inference parity: decode attention against ops::attention, GPU sampling against the CPU
// Sampler's semantics, and the CUDA decoder against the CPU decoder on tiny random models.
//
// Tolerances (max|a-b| / max|b|):
//  - attention_decode: 1e-2 (bf16 output; the inputs are exact bf16 values on both sides).
//  - decoder logits: 2e-2. The CPU model's matrices are rounded to bf16 first, so both sides use
//    the same weights; what remains is the GPU's bf16 activations (q, k, v, attention output,
//    normed inputs, MLP), each one bf16 rounding (<= 2^-9 relative) per op over 2 layers.
//  - greedy continuations: identical; where they diverge, the CPU's own margin between the two
//    tokens at that step is printed and must be below the logits tolerance (a near tie that bf16
//    rounding may flip), otherwise the GPU is wrong.
//  - sampling: greedy argmax exact (ties included); cut-off sampling never leaves the allowed set
//    computed here from sampler.h's rules; with u on a stratified grid (k + 0.5) / N the draw is
//    an inverse-CDF walk, so each token's count is within 1.5 of N * p (p from the reference).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "backend/cuda/attention_decode.h"
#include "backend/cuda/flash_attn.h"
#include "backend/cuda/rmsnorm.h"
#include "backend/cuda/rope.h"
#include "backend/cuda/sampling.h"
#include "backend/ops.h"
#include "common/test_util.h"
#include "infer/cuda/cuda_decoder.h"
#include "infer/decoder.h"
#include "infer/generate.h"
#include "infer/sampler.h"
#include "model/init_model.h"
#include "model/lora.h"
#include "ops_test_util.h"

namespace brisk::ops_test {
namespace {

__nv_bfloat16* bf16p(const DeviceBuffer& d) { return d.as<__nv_bfloat16>(); }

// ---- attention -------------------------------------------------------------------------------

struct AttnCase {
  int nh, nkv, hd, window;
  float softcap;
};

TEST(CudaDecode, AttentionDecodeMatchesCpu) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(501);
  // The grouped kernel (head_dim 64/128/256, up to 8 query heads per kv head: groups 1, 2, 4, 7,
  // 8) and the general one (other head sizes, larger groups).
  const AttnCase cases[] = {{4, 2, 16, 0, 0.0f},   {8, 1, 128, 0, 0.0f}, {6, 6, 80, 7, 0.0f},
                            {32, 8, 128, 0, 5.0f}, {4, 4, 256, 33, 0.0f}, {2, 1, 40, 0, 2.0f},
                            {28, 4, 128, 0, 0.0f}, {16, 8, 64, 9, 0.0f},  {24, 2, 64, 0, 0.0f}};
  const int64_t cap = 301;
  // Per slot: tokens already in the cache and new tokens (prefill chunk or one decode token).
  const int64_t len0[] = {0, 37, 299, 5};
  const int64_t n_new[] = {1, 5, 2, 17};
  const int slots = 4;
  for (const AttnCase& c : cases)
    for (int splits : {1, 3, 64}) {
      const int64_t row = int64_t(c.nkv) * c.hd, cache_elems = slots * cap * row;
      auto kc = random_bf16(rng, size_t(cache_elems), -1.0f, 1.0f), vc = random_bf16(rng, size_t(cache_elems), -1.0f, 1.0f);
      int64_t T = 0;
      for (int s = 0; s < slots; ++s) T += n_new[s];
      auto q = random_bf16(rng, size_t(T * c.nh * c.hd), -1.0f, 1.0f);
      auto knew = random_bf16(rng, size_t(T * row), -1.0f, 1.0f), vnew = random_bf16(rng, size_t(T * row), -1.0f, 1.0f);
      std::vector<int32_t> tok_slot, tok_pos;
      for (int s = 0; s < slots; ++s)
        for (int64_t j = 0; j < n_new[s]; ++j) tok_slot.push_back(s), tok_pos.push_back(int32_t(len0[s] + j));
      // The reference cache: the random rows with the new tokens' rows written in.
      auto kref = kc, vref = vc;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t e = 0; e < row; ++e) {
          kref[size_t((tok_slot[size_t(t)] * cap + tok_pos[size_t(t)]) * row + e)] = knew[size_t(t * row + e)];
          vref[size_t((tok_slot[size_t(t)] * cap + tok_pos[size_t(t)]) * row + e)] = vnew[size_t(t * row + e)];
        }
      cuda::AttentionDecodeShape sh;
      sh.n_head = c.nh, sh.n_kv_head = c.nkv, sh.head_dim = c.hd, sh.capacity = cap;
      sh.scale = 1.0f / std::sqrt(float(c.hd)), sh.window = c.window, sh.softcap = c.softcap;
      DeviceBuffer dkc = to_device(kc), dvc = to_device(vc), dq = to_device(q), dkn = to_device(knew),
                   dvn = to_device(vnew), dslot = to_device(tok_slot), dpos = to_device(tok_pos);
      DeviceBuffer dout = poisoned_bf16(size_t(T * c.nh * c.hd));
      DeviceBuffer scratch = poisoned_f32(cuda::attention_decode_scratch_bytes(T, sh, splits) / 4);
      DeviceBuffer counters = to_device(std::vector<uint32_t>(cuda::attention_decode_counter_bytes(T, sh) / 4, 0u));
      // No norm, no rotation: the append alone (rotation: RopeKvAppendMatchesSeparateKernels).
      cuda::launch_rope_kv_append(bf16p(dq), bf16p(dkn), bf16p(dvn), nullptr, nullptr, 0.0f, cuda::DecodeRope{},
                                  dslot.as<int32_t>(), dpos.as<int32_t>(), bf16p(dkc), bf16p(dvc), T, sh, nullptr);
      EXPECT_EQ(from_device<uint16_t>(dkc, size_t(cache_elems)), kref) << "kv_append keys";
      EXPECT_EQ(from_device<uint16_t>(dvc, size_t(cache_elems)), vref) << "kv_append values";
      EXPECT_EQ(from_device<uint16_t>(dq, q.size()), q) << "q without norm or rotation is unchanged";
      // Twice: the last block of each (token, head) must leave its arrival counter at zero.
      std::vector<uint16_t> first;
      for (int rep = 0; rep < 2; ++rep) {
        cuda::launch_attention_decode(bf16p(dq), bf16p(dkc), bf16p(dvc), dslot.as<int32_t>(), dpos.as<int32_t>(),
                                      bf16p(dout), scratch.as<float>(), counters.as<unsigned>(), T, sh, splits,
                                      nullptr);
        if (rep == 0) first = from_device<uint16_t>(dout, size_t(T * c.nh * c.hd));
      }
      EXPECT_EQ(from_device<uint16_t>(dout, size_t(T * c.nh * c.hd)), first) << "second launch, splits " << splits;
      EXPECT_EQ(from_device<uint32_t>(counters, counters.size() / 4),
                std::vector<uint32_t>(counters.size() / 4, 0u)) << "arrival counters reset";
      auto got = bf16_to_f32(from_device<uint16_t>(dout, size_t(T * c.nh * c.hd)));
      std::vector<float> want(got.size());
      auto qf = bf16_to_f32(q), kf = bf16_to_f32(kref), vf = bf16_to_f32(vref);
      int64_t t0 = 0;
      for (int s = 0; s < slots; ++s) {
        const int64_t n = n_new[s];
        ops::attention(Tensor(qf.data() + t0 * c.nh * c.hd, DType::F32, {n, c.nh, c.hd}),
                       Tensor(kf.data() + s * cap * row, DType::F32, {cap, c.nkv, c.hd}),
                       Tensor(vf.data() + s * cap * row, DType::F32, {cap, c.nkv, c.hd}), len0[s],
                       Tensor(want.data() + t0 * c.nh * c.hd, DType::F32, {n, c.nh, c.hd}), sh.scale, c.window,
                       c.softcap);
        t0 += n;
      }
      expect_close(cat("attention_decode nh ", c.nh, " nkv ", c.nkv, " hd ", c.hd, " win ", c.window, " cap ",
                       c.softcap, " splits ", splits),
                   got, want, 1e-2);
    }
}

// Prefill through the flash kernel over a KV cache (launch_flash_attn_prefix_forward): several
// slots at once, each a segment whose queries are the last positions of its cache rows, against
// ops::attention with the same offset. Head sizes of the flash kernels, GQA, windows, segments
// from one token to past a 128-row query tile and a 64-row key tile.
TEST(CudaDecode, FlashPrefixMatchesCpu) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(611);
  const AttnCase cases[] = {{4, 2, 16, 0, 0.0f}, {8, 2, 64, 0, 0.0f}, {32, 8, 128, 0, 0.0f}, {6, 3, 32, 37, 0.0f},
                            {8, 8, 128, 100, 0.0f}};
  const int64_t cap = 400;
  const int64_t len0[] = {0, 37, 211, 5, 130};  // tokens already cached per slot
  const int64_t n_new[] = {150, 1, 64, 17, 129};
  const int slots = 5;
  for (const AttnCase& c : cases) {
    const int64_t row = int64_t(c.nkv) * c.hd;
    int64_t T = 0;
    for (int s = 0; s < slots; ++s) T += n_new[s];
    // The cache after the new tokens were appended: random rows everywhere (later positions
    // must stay invisible).
    auto kc = random_bf16(rng, size_t(slots * cap * row), -1.0f, 1.0f);
    auto vc = random_bf16(rng, size_t(slots * cap * row), -1.0f, 1.0f);
    auto q = random_bf16(rng, size_t(T * c.nh * c.hd), -1.0f, 1.0f);
    std::vector<int32_t> cu{0}, kv_start, kv_len;
    int max_len = 0;
    for (int s = 0; s < slots; ++s) {
      cu.push_back(cu.back() + int32_t(n_new[s]));
      kv_start.push_back(int32_t(s * cap));
      kv_len.push_back(int32_t(len0[s] + n_new[s]));
      max_len = std::max(max_len, int(n_new[s]));
    }
    cuda::FlashAttnShape f;
    f.tokens = T, f.n_seg = slots, f.max_seqlen = max_len;
    f.n_heads = c.nh, f.n_kv_heads = c.nkv, f.head_dim = c.hd;
    f.k_stride = f.v_stride = row;
    f.scale = 1.0f / std::sqrt(float(c.hd)), f.window = c.window;
    DeviceBuffer dkc = to_device(kc), dvc = to_device(vc), dq = to_device(q), dcu = to_device(cu),
                 dks = to_device(kv_start), dkl = to_device(kv_len);
    DeviceBuffer dout = poisoned_bf16(size_t(T * c.nh * c.hd)), dlse = poisoned_f32(size_t(T * c.nh));
    cuda::launch_flash_attn_prefix_forward(bf16p(dq), bf16p(dkc), bf16p(dvc), dcu.as<int32_t>(), dks.as<int32_t>(),
                                           dkl.as<int32_t>(), f, bf16p(dout), dlse.as<float>(), nullptr);
    auto got = bf16_to_f32(from_device<uint16_t>(dout, size_t(T * c.nh * c.hd)));
    std::vector<float> want(got.size());
    auto qf = bf16_to_f32(q), kf = bf16_to_f32(kc), vf = bf16_to_f32(vc);
    for (int s = 0; s < slots; ++s) {
      const int64_t n = n_new[s], t0 = cu[size_t(s)];
      ops::attention(Tensor(qf.data() + t0 * c.nh * c.hd, DType::F32, {n, c.nh, c.hd}),
                     Tensor(kf.data() + s * cap * row, DType::F32, {cap, c.nkv, c.hd}),
                     Tensor(vf.data() + s * cap * row, DType::F32, {cap, c.nkv, c.hd}), len0[s],
                     Tensor(want.data() + t0 * c.nh * c.hd, DType::F32, {n, c.nh, c.hd}), f.scale, c.window, 0.0f);
    }
    expect_close(cat("flash prefix nh ", c.nh, " nkv ", c.nkv, " hd ", c.hd, " win ", c.window), got, want, 1e-2);
  }
}

// The fused q/k norm + RoPE + cache append against the separate kernels it replaces
// (launch_rmsnorm, launch_rope, a copy): bit-identical q, k and cache rows.
TEST(CudaDecode, RopeKvAppendMatchesSeparateKernels) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(777);
  struct C {
    int nh, nkv, hd, n_freq;
    bool norm;
  };
  for (const C c : {C{4, 2, 16, 8, false}, C{32, 8, 128, 64, false}, C{8, 2, 128, 64, true}, C{6, 3, 80, 16, true},
                    C{2, 1, 256, 128, true}}) {
    const int64_t T = 5, cap = 23, row = int64_t(c.nkv) * c.hd;
    const float eps = 1e-6f;
    auto q = random_bf16(rng, size_t(T * c.nh * c.hd), -2.0f, 2.0f);
    auto k = random_bf16(rng, size_t(T * row), -2.0f, 2.0f), v = random_bf16(rng, size_t(T * row), -2.0f, 2.0f);
    auto qn = random_f32(rng, size_t(c.hd), 0.5f, 1.5f), kn = random_f32(rng, size_t(c.hd), 0.5f, 1.5f);
    std::vector<float> inv_freq(size_t(c.n_freq));
    for (int i = 0; i < c.n_freq; ++i) inv_freq[size_t(i)] = std::pow(10000.0f, -2.0f * float(i) / float(c.hd));
    const std::vector<int32_t> slot = {1, 0, 1, 2, 0}, pos = {0, 7, 22, 13, 11};
    auto cache0 = random_bf16(rng, size_t(3 * cap * row), -1.0f, 1.0f);
    cuda::AttentionDecodeShape sh;
    sh.n_head = c.nh, sh.n_kv_head = c.nkv, sh.head_dim = c.hd, sh.capacity = cap;
    DeviceBuffer dq = to_device(q), dk = to_device(k), dv = to_device(v), dqn = to_device(qn), dkn = to_device(kn),
                 dfreq = to_device(inv_freq), dslot = to_device(slot), dpos = to_device(pos),
                 dkc = to_device(cache0), dvc = to_device(cache0);
    const float mscale = 1.0f + 0.1f * float(c.n_freq % 3);  // yarn-style scaling exercised too
    cuda::DecodeRope rope{dfreq.as<float>(), c.n_freq, mscale};
    cuda::launch_rope_kv_append(bf16p(dq), bf16p(dk), bf16p(dv), c.norm ? dqn.as<float>() : nullptr,
                                c.norm ? dkn.as<float>() : nullptr, eps, rope, dslot.as<int32_t>(),
                                dpos.as<int32_t>(), bf16p(dkc), bf16p(dvc), T, sh, nullptr);
    // The reference: the separate kernels on copies, then the copy into the cache on the host.
    DeviceBuffer rq = to_device(q), rk = to_device(k);
    if (c.norm) {
      cuda::launch_rmsnorm(bf16p(rq), dqn.as<float>(), bf16p(rq), T * c.nh, c.hd, eps, 0.0f, nullptr);
      cuda::launch_rmsnorm(bf16p(rk), dkn.as<float>(), bf16p(rk), T * c.nkv, c.hd, eps, 0.0f, nullptr);
    }
    cuda::launch_rope(bf16p(rq), dpos.as<int32_t>(), dfreq.as<float>(), T, c.nh, c.hd, c.n_freq, mscale, nullptr);
    cuda::launch_rope(bf16p(rk), dpos.as<int32_t>(), dfreq.as<float>(), T, c.nkv, c.hd, c.n_freq, mscale, nullptr);
    auto want_q = from_device<uint16_t>(rq, q.size()), want_k = from_device<uint16_t>(rk, k.size());
    auto want_kc = cache0, want_vc = cache0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t e = 0; e < row; ++e) {
        const size_t dst = size_t((slot[size_t(t)] * cap + pos[size_t(t)]) * row + e);
        want_kc[dst] = want_k[size_t(t * row + e)];
        want_vc[dst] = v[size_t(t * row + e)];
      }
    const std::string what = cat("rope_kv_append nh ", c.nh, " nkv ", c.nkv, " hd ", c.hd, " n_freq ", c.n_freq,
                                 c.norm ? " norm" : "");
    std::vector<uint16_t> got_q = from_device<uint16_t>(dq, q.size()), got_k = from_device<uint16_t>(dk, k.size());
    EXPECT_EQ(got_q, want_q) << what << ": q";
    EXPECT_EQ(got_k, want_k) << what << ": k";
    EXPECT_EQ(from_device<uint16_t>(dkc, cache0.size()), want_kc) << what << ": key cache";
    EXPECT_EQ(from_device<uint16_t>(dvc, cache0.size()), want_vc) << what << ": value cache";
    EXPECT_NE(got_q, q) << what << ": q was not rotated";
    std::printf("[rope_kv_append] %s: bit-identical to rmsnorm + rope + copy\n", what.c_str());
  }
}

// ---- sampling --------------------------------------------------------------------------------

int32_t gpu_argmax(const std::vector<float>& logits) {
  DeviceBuffer d = to_device(logits), out = to_device(std::vector<int32_t>{-7});
  cuda::launch_argmax(d.as<float>(), 1, int64_t(logits.size()), out.as<int32_t>(), nullptr);
  return from_device<int32_t>(out, 1)[0];
}

TEST(CudaSampling, GreedyArgmaxMatchesCpuExactlyWithTies) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(601);
  for (int64_t V : {1, 2, 7, 1000, 32000, 128256})
    for (int trial = 0; trial < 4; ++trial) {
      auto logits = random_f32(rng, size_t(V), -20.0f, 20.0f);
      if (trial >= 1 && V > 2) {  // a tie at the maximum, between a later and an earlier id
        const size_t hi = size_t(rng.below(uint64_t(V))), lo = size_t(rng.below(uint64_t(V)));
        logits[hi] = logits[lo] = 25.0f;
      }
      if (trial == 3) std::fill(logits.begin(), logits.end(), -3.5f);  // all equal: id 0
      infer::SamplingParams p;
      p.temperature = 0.0f;
      infer::Sampler cpu(p);
      auto copy = logits;
      const int32_t want = cpu.sample(copy.data(), V, {});
      EXPECT_EQ(gpu_argmax(logits), want) << "vocab " << V << " trial " << trial;
    }
}

TEST(CudaSampling, PenaltiesThenGreedyMatchCpu) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(602);
  const int64_t V = 5000;
  for (int trial = 0; trial < 20; ++trial) {
    auto logits = random_f32(rng, size_t(V), -5.0f, 5.0f);
    std::vector<int32_t> history;
    for (int i = 0; i < 300; ++i) history.push_back(int32_t(rng.below(40)));  // repeats: counts > 1
    infer::SamplingParams p;
    p.temperature = 0.0f;
    p.repetition_penalty = 1.0f + rng.uniform(0.1f, 2.0f);
    p.presence_penalty = rng.uniform(-0.5f, 0.5f);
    p.frequency_penalty = rng.uniform(0.0f, 0.05f);
    infer::Sampler cpu(p);
    auto copy = logits;
    const int32_t want = cpu.sample(copy.data(), V, history);
    std::vector<int32_t> ids, counts;
    for (int32_t id = 0; id < 40; ++id) {
      const int32_t n = int32_t(std::count(history.begin(), history.end(), id));
      if (n) ids.push_back(id), counts.push_back(n);
    }
    DeviceBuffer d = to_device(logits), di = to_device(ids), dc = to_device(counts);
    DeviceBuffer out = to_device(std::vector<int32_t>{-7});
    cuda::launch_penalties(d.as<float>(), di.as<int32_t>(), dc.as<int32_t>(), int(ids.size()), p.repetition_penalty,
                           p.presence_penalty, p.frequency_penalty, nullptr);
    auto penalised = from_device<float>(d, size_t(V));
    // Same float operations on both sides; 1e-6 leaves room for a host compiler that fuses a
    // multiply-add where the kernel rounds twice.
    expect_close(cat("penalised logits, trial ", trial), penalised, copy, 1e-6);
    cuda::launch_argmax(d.as<float>(), 1, V, out.as<int32_t>(), nullptr);
    EXPECT_EQ(from_device<int32_t>(out, 1)[0], want) << "trial " << trial;
  }
}

// sampler.h's rules, written out plainly in double: the probability of every id after
// temperature, top_k, top_p and min_p (0 for the ids cut).
std::vector<double> reference_probs(const std::vector<float>& logits, const infer::SamplingParams& p) {
  const size_t V = logits.size();
  std::vector<float> l(V);
  for (size_t i = 0; i < V; ++i) l[i] = logits[i] / p.temperature;
  std::vector<bool> keep(V, true);
  if (p.top_k > 0 && size_t(p.top_k) < V) {
    std::vector<float> s = l;
    std::sort(s.begin(), s.end(), std::greater<float>());
    for (size_t i = 0; i < V; ++i) keep[i] = l[i] >= s[size_t(p.top_k - 1)];
  }
  auto softmax = [&] {
    float mx = -INFINITY;
    for (size_t i = 0; i < V; ++i)
      if (keep[i]) mx = std::max(mx, l[i]);
    std::vector<double> pr(V, 0.0);
    double sum = 0;
    for (size_t i = 0; i < V; ++i)
      if (keep[i]) sum += pr[i] = double(std::exp(l[i] - mx));
    for (double& x : pr) x /= sum;
    return pr;
  };
  if (p.top_p < 1.0f) {
    std::vector<double> pr = softmax();
    std::vector<size_t> order;
    for (size_t i = 0; i < V; ++i)
      if (keep[i]) order.push_back(i);
    // Ascending probability; among equals the higher id first (it is dropped first).
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return pr[a] != pr[b] ? pr[a] < pr[b] : a > b; });
    double dropped = 0;
    for (size_t j = 0; j + 1 < order.size() && dropped + pr[order[j]] <= 1.0 - double(p.top_p); ++j) {
      dropped += pr[order[j]];
      keep[order[j]] = false;
    }
  }
  if (p.min_p > 0.0f) {
    std::vector<double> pr = softmax();
    const double cut = double(p.min_p) * *std::max_element(pr.begin(), pr.end());
    for (size_t i = 0; i < V; ++i)
      if (keep[i] && pr[i] < cut) keep[i] = false;
  }
  return softmax();
}

TEST(CudaSampling, CutoffsStayInTheAllowedSetAndMatchTheDistribution) {
  BRISK_REQUIRE_CUDA_DEVICE();
  Rng rng(603);
  struct Case {
    int64_t V;
    float temperature;
    int top_k;
    float top_p, min_p;
  };
  const Case cases[] = {{8, 1.0f, 0, 1.0f, 0.0f},    {8, 0.7f, 3, 1.0f, 0.0f},   {8, 1.3f, 0, 0.8f, 0.0f},
                        {8, 1.0f, 0, 1.0f, 0.2f},    {9, 0.9f, 5, 0.9f, 0.05f},  {1000, 1.0f, 40, 0.95f, 0.0f},
                        {32000, 0.8f, 0, 0.9f, 0.0f}, {32000, 1.0f, 0, 1.0f, 0.1f}, {1, 1.0f, 0, 0.5f, 0.5f}};
  for (const Case& c : cases) {
    auto logits = random_f32(rng, size_t(c.V), -4.0f, 4.0f);
    if (c.V >= 8) logits[3] = logits[5];  // a tie
    infer::SamplingParams p;
    p.temperature = c.temperature, p.top_k = c.top_k, p.top_p = c.top_p, p.min_p = c.min_p;
    const std::vector<double> want = reference_probs(logits, p);
    const size_t ws_bytes = cuda::sample_workspace_bytes(c.V);
    DeviceBuffer d = to_device(logits), ws(ws_bytes), out = to_device(std::vector<int32_t>{-7});
    const int N = c.V <= 9 ? 4000 : 500;
    std::vector<int> count(size_t(c.V), 0);
    int outside = 0;
    for (int k = 0; k < N; ++k) {
      const double u = (k + 0.5) / N;
      cuda::launch_sample(d.as<float>(), c.V, {c.temperature, c.top_k, c.top_p, c.min_p}, u, ws.data(), ws_bytes,
                          out.as<int32_t>(), nullptr);
      const int32_t id = from_device<int32_t>(out, 1)[0];
      ASSERT_TRUE(id >= 0 && id < c.V) << "sampled id " << id;
      ++count[size_t(id)];
      outside += want[size_t(id)] == 0.0;
    }
    double worst = 0;
    if (c.V <= 9)
      for (int64_t i = 0; i < c.V; ++i) worst = std::max(worst, std::fabs(count[size_t(i)] - N * want[size_t(i)]));
    std::printf("  sample V %-6lld T %.1f k %-3d p %.2f min_p %.2f: %d/%d outside the allowed set, max|count - N p| = %.2f\n",
                (long long)c.V, c.temperature, c.top_k, c.top_p, c.min_p, outside, N, worst);
    EXPECT_EQ(outside, 0);
    if (c.V <= 9) EXPECT_LE(worst, 1.5) << "stratified draws must follow the distribution";
  }
}

// ---- the decoder -----------------------------------------------------------------------------

constexpr double kTolLogits = 2e-2;

void round_matrices_to_bf16(ModelWeights& w) {
  auto round = [](Tensor& t) {
    if (!t.defined() || t.dtype != DType::F32) return;
    float* p = t.f32();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = brisk::bf16_to_f32(f32_to_bf16(p[i]));
  };
  round(w.embed);
  if (w.lm_head.data != w.embed.data) round(w.lm_head);
  for (LayerWeights& L : w.layers)
    for (Tensor* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv, &L.bo, &L.w_gate, &L.w_up, &L.w_down}) round(*t);
}

std::vector<float> to_vec(const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); }

class CudaDecoderParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!cuda_device_present()) GTEST_SKIP() << "no CUDA device on this machine: run brisk_ops_tests on the GPU machine";
    InitModelOptions o;
    o.arch = GetParam();
    o.preset = "tiny";
    o.seed = 7;
    o.vocab_size = 3001;  // odd on purpose
    init_model(dir.path + "/m", o);
    model = Model::load(dir.path + "/m");
    round_matrices_to_bf16(model->weights());
    cpu = infer::make_decoder(*model, "cpu");
    gpu = infer::make_decoder(*model, "cuda");
  }
  std::vector<int32_t> random_ids(int64_t n, uint64_t seed) {
    Rng r(seed);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& id : ids) id = int32_t(r.below(uint64_t(model->config().vocab_size)));
    return ids;
  }
  testing::TempDir dir;
  std::unique_ptr<Model> model;
  std::unique_ptr<infer::Decoder> cpu, gpu;
};

TEST_P(CudaDecoderParity, PrefillLogitsIncludingChunkedPrompt) {
  for (int64_t n : {1, 23, 600}) {  // 600 > the 512-token piece: crosses a chunk boundary
    auto ids = random_ids(n, uint64_t(n));
    cpu->reserve(1, n + 8);
    gpu->reserve(1, n + 8);
    auto want = to_vec(cpu->forward({SeqChunk{0, ids, true}}));
    auto got = to_vec(gpu->forward({SeqChunk{0, ids, true}}));
    expect_close(cat(GetParam(), " prefill logits, ", n, " tokens"), got, want, kTolLogits);
    EXPECT_EQ(gpu->length(0), n);
  }
}

TEST_P(CudaDecoderParity, Greedy32TokensIdentical) {
  auto prompt = random_ids(9, 99);
  infer::GenerateOptions opt;
  opt.sampling.temperature = 0.0f;
  opt.max_tokens = 32;
  auto want = infer::generate(*cpu, nullptr, prompt, opt);
  auto got = infer::generate(*gpu, nullptr, prompt, opt);
  infer::CudaDecoderStats st;
  ASSERT_TRUE(infer::cuda_decoder_stats(*gpu, &st));
  std::printf("  %s greedy: %zu tokens, CUDA graph %s\n", GetParam().c_str(), got.ids.size(),
              st.graph_active ? "replayed" : "not used");
  ASSERT_EQ(got.ids.size(), want.ids.size());
  for (size_t i = 0; i < want.ids.size(); ++i)
    if (got.ids[i] != want.ids[i]) {
      // The CPU's margin between its token and the GPU's at this step, from the common prefix.
      std::vector<int32_t> prefix = prompt;
      prefix.insert(prefix.end(), want.ids.begin(), want.ids.begin() + long(i));
      cpu->reserve(1, int64_t(prefix.size()) + 1);
      auto row = to_vec(cpu->forward({SeqChunk{0, prefix, false}}));
      double mx = 0;
      for (float v : row) mx = std::max(mx, std::fabs(double(v)));
      const double margin = double(row[size_t(want.ids[i])]) - double(row[size_t(got.ids[i])]);
      std::printf("  first divergence at step %zu: cpu %d, gpu %d, cpu margin %.3e (max|logit| %.3e)\n", i,
                  want.ids[i], got.ids[i], margin, mx);
      EXPECT_LE(margin, kTolLogits * mx) << "the GPU left a clear CPU choice at step " << i;
      break;
    }
}

TEST_P(CudaDecoderParity, BatchedDecodeEqualsOneByOne) {
  const int64_t lens[] = {5, 11, 2};
  std::vector<std::vector<int32_t>> prompts, steps;
  for (int s = 0; s < 3; ++s) {
    prompts.push_back(random_ids(lens[s], 10 + uint64_t(s)));
    steps.push_back(random_ids(4, 20 + uint64_t(s)));
  }
  const int64_t V = model->config().vocab_size;
  // Batched: one prefill call with three chunks, then four steps of the three slots together.
  gpu->reserve(3, 32);
  std::vector<std::vector<float>> batched(3);
  auto append = [&](const Tensor& logits) {
    for (int s = 0; s < 3; ++s) batched[size_t(s)].insert(batched[size_t(s)].end(), logits.f32() + s * V, logits.f32() + (s + 1) * V);
  };
  append(gpu->forward({SeqChunk{0, prompts[0], false}, SeqChunk{1, prompts[1], false}, SeqChunk{2, prompts[2], false}}));
  for (int k = 0; k < 4; ++k)
    append(gpu->forward({SeqChunk{0, {steps[0][size_t(k)]}, false}, SeqChunk{1, {steps[1][size_t(k)]}, false},
                         SeqChunk{2, {steps[2][size_t(k)]}, false}}));
  for (int s = 0; s < 3; ++s) {
    for (infer::Decoder* d : {gpu.get(), cpu.get()}) {
      d->reserve(1, 32);
      std::vector<float> alone = to_vec(d->forward({SeqChunk{0, prompts[size_t(s)], false}}));
      for (int k = 0; k < 4; ++k) {
        auto r = to_vec(d->forward({SeqChunk{0, {steps[size_t(s)][size_t(k)]}, false}}));
        alone.insert(alone.end(), r.begin(), r.end());
      }
      expect_close(cat(GetParam(), " slot ", s, " batched gpu vs alone on ", d->device_name() == "cpu" ? "cpu" : "gpu"),
                   batched[size_t(s)], alone, kTolLogits);
    }
  }
}

TEST_P(CudaDecoderParity, LoraAdapterMatchesCpu) {
  LoraSpec spec;
  spec.r = 4;
  spec.alpha = 8;
  spec.targets.fill(true);
  LoraAdapter a = init_lora(model->config(), spec, 31, /*random_b=*/true);
  auto ids = random_ids(13, 5);
  gpu->reserve(1, 16);
  auto base = to_vec(gpu->forward({SeqChunk{0, ids, true}}));
  cpu->set_adapter(&a);
  gpu->set_adapter(&a);
  cpu->reserve(1, 16);
  gpu->reserve(1, 16);
  auto want = to_vec(cpu->forward({SeqChunk{0, ids, true}}));
  auto got = to_vec(gpu->forward({SeqChunk{0, ids, true}}));
  expect_close(cat(GetParam(), " logits with LoRA"), got, want, kTolLogits);
  const double effect = max_rel_err(base, want);
  std::printf("  adapter effect on the logits: %.3e (must exceed the tolerance to mean anything)\n", effect);
  EXPECT_GT(effect, 5 * kTolLogits);
  cpu->set_adapter(nullptr);
  gpu->set_adapter(nullptr);
}

INSTANTIATE_TEST_SUITE_P(Archs, CudaDecoderParity, ::testing::Values("llama", "qwen2", "qwen3", "mistral"));

}  // namespace
}  // namespace brisk::ops_test
