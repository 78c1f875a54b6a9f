// AdamW against the torch.optim.AdamW update written out in double, the closed form of the
// first step, bit-for-bit resume through state_tensors, the threaded path; clip_grad_norm as
// torch.nn.utils.clip_grad_norm_; every LR schedule against transformers' lambdas at many steps
// and at the edges (no warmup, step == total, warmup == total); warmup_steps_for.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "train/optimizer.h"

namespace brisk::train {
namespace {

// Owns the storage of one parameter so tests can build Params from plain vectors.
struct OwnedParam {
  std::string name;
  std::vector<float> value, grad;
  bool decay = true;
  Param view() {
    return Param{name, Tensor(value.data(), DType::F32, Shape{int64_t(value.size())}),
                 Tensor(grad.data(), DType::F32, Shape{int64_t(grad.size())}), decay};
  }
};

// torch.optim.AdamW (amsgrad=False, maximize=False) for one element, in double.
struct RefAdamW {
  double p, m = 0, v = 0;
  void step(double g, int t, const AdamWOptions& o, bool decay) {
    if (decay && o.weight_decay != 0) p *= 1 - o.lr * o.weight_decay;
    m = o.beta1 * m + (1 - o.beta1) * g;
    v = o.beta2 * v + (1 - o.beta2) * g * g;
    const double m_hat = m / (1 - std::pow(o.beta1, t));
    const double v_hat = v / (1 - std::pow(o.beta2, t));
    p -= o.lr * m_hat / (std::sqrt(v_hat) + o.eps);
  }
};

void expect_rel(double got, double want, double rel, const std::string& what) {
  EXPECT_LE(std::fabs(got - want), rel * std::max(std::fabs(want), 1e-30)) << what << ": got " << got << ", want " << want;
}

const float* state_of(AdamW& opt, const std::string& name) {
  for (auto& [n, t] : opt.state_tensors())
    if (n == name) return t.f32();
  ADD_FAILURE() << "no state tensor " << name;
  return nullptr;
}

TEST(AdamW, MatchesTorchFormulasOverThreeSteps) {
  OwnedParam a{"w", {0.5f, -1.25f, 2.0f, 0.0f, 3e-3f}, {}, true};
  OwnedParam b{"b", {0.75f, -0.1f, 1.5f}, {}, false};  // a bias: no weight decay
  a.grad.resize(a.value.size());
  b.grad.resize(b.value.size());
  std::vector<RefAdamW> ra, rb;
  for (float x : a.value) ra.push_back({x});
  for (float x : b.value) rb.push_back({x});
  AdamW opt({a.view(), b.view()});
  // Different grads and learning rates per step, as a schedule would give; weight decay on.
  const std::vector<std::vector<float>> ga = {{0.1f, -0.2f, 0.3f, 0.0f, -1e-4f}, {-0.05f, 0.4f, 0.3f, 2.0f, 5e-4f},
                                              {0.2f, 0.0f, -0.7f, -1.0f, 1e-3f}};
  const std::vector<std::vector<float>> gb = {{1.0f, -3.0f, 0.25f}, {0.5f, 2.0f, 0.0f}, {-0.3f, 0.1f, 0.9f}};
  const double lrs[] = {1e-2, 5e-3, 2e-2};
  for (int s = 0; s < 3; ++s) {
    AdamWOptions o;
    o.lr = lrs[s];
    o.weight_decay = 0.1;
    o.beta1 = 0.9;
    o.beta2 = 0.95;
    o.eps = 1e-8;
    // The optimizer holds views of a.grad / b.grad, so writing them sets the next gradient.
    for (size_t i = 0; i < a.grad.size(); ++i) a.grad[i] = ga[s][i];
    for (size_t i = 0; i < b.grad.size(); ++i) b.grad[i] = gb[s][i];
    opt.step(o);
    for (size_t i = 0; i < ra.size(); ++i) ra[i].step(ga[s][i], s + 1, o, true);
    for (size_t i = 0; i < rb.size(); ++i) rb[i].step(gb[s][i], s + 1, o, false);
  }
  EXPECT_EQ(opt.steps(), 3);
  const float* ma = state_of(opt, "w.exp_avg");
  const float* va = state_of(opt, "w.exp_avg_sq");
  for (size_t i = 0; i < ra.size(); ++i) {
    const std::string at = "w[" + std::to_string(i) + "]";
    expect_rel(a.value[i], ra[i].p, 1e-6, at + " value");
    expect_rel(ma[i], ra[i].m, 1e-6, at + " exp_avg");
    expect_rel(va[i], ra[i].v, 1e-6, at + " exp_avg_sq");
  }
  for (size_t i = 0; i < rb.size(); ++i) expect_rel(b.value[i], rb[i].p, 1e-6, "b[" + std::to_string(i) + "] value");
  // The no-decay parameter really skipped decay: with decay its value would differ by
  // about lr*wd*p, far above the tolerance.
  RefAdamW decayed{0.75};
  for (int s = 0; s < 3; ++s) decayed.step(gb[s][0], s + 1, {lrs[s], 0.9, 0.95, 1e-8, 0.1}, true);
  EXPECT_GT(std::fabs(b.value[0] - decayed.p), 1e-4);
}

TEST(AdamW, FirstStepIsSignedLearningRate) {
  // Step 1 without decay: m_hat = g and sqrt(v_hat) = |g|, so p -= lr * g / (|g| + eps).
  OwnedParam a{"w", {1.0f, 1.0f, 1.0f, 1.0f}, {0.5f, -2.0f, 1e-7f, 0.0f}};
  AdamW opt({a.view()});
  opt.step({.lr = 0.01});
  const double g[] = {0.5, -2.0, 1e-7, 0.0};
  for (int i = 0; i < 4; ++i) expect_rel(a.value[i], 1.0 - 0.01 * g[i] / (std::fabs(g[i]) + 1e-8), 1e-7, "w");
}

TEST(AdamW, ResumeFromStateTensorsIsBitExact) {
  auto make = [] { return OwnedParam{"w", {0.3f, -0.7f, 1.1f, 2.5f, -4.0f}, {0, 0, 0, 0, 0}}; };
  auto grad_at = [](int s, size_t i) { return float(std::sin(1.0 + s * 7.0 + double(i))); };
  AdamWOptions o{.lr = 3e-3, .weight_decay = 0.01};
  OwnedParam full = make(), first = make(), resumed = make();
  AdamW a({full.view()}), b({first.view()});
  for (int s = 0; s < 4; ++s) {
    for (size_t i = 0; i < 5; ++i) full.grad[i] = grad_at(s, i);
    a.step(o);
    if (s < 2) {
      for (size_t i = 0; i < 5; ++i) first.grad[i] = grad_at(s, i);
      b.step(o);
    }
  }
  // "Checkpoint" b after two steps: values, moments and the step count.
  resumed.value = first.value;
  AdamW c({resumed.view()});
  auto from = b.state_tensors(), to = c.state_tensors();
  ASSERT_EQ(from.size(), 2u);
  ASSERT_EQ(to.size(), 2u);
  EXPECT_EQ(to[0].first, "w.exp_avg");
  EXPECT_EQ(to[1].first, "w.exp_avg_sq");
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(to[k].second.shape, Shape{5});
    std::memcpy(to[k].second.data, from[k].second.data, from[k].second.nbytes());
  }
  c.set_steps(b.steps());
  for (int s = 2; s < 4; ++s) {
    for (size_t i = 0; i < 5; ++i) resumed.grad[i] = grad_at(s, i);
    c.step(o);
  }
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(resumed.value[i], full.value[i]) << i;
}

TEST(AdamW, ThreadedUpdateEqualsSerial) {
  const size_t n = 300001;  // several parallel chunks, odd tail
  auto make = [n] {
    OwnedParam p{"big", std::vector<float>(n), std::vector<float>(n)};
    for (size_t i = 0; i < n; ++i) {
      p.value[i] = float(std::cos(double(i)));
      p.grad[i] = float(std::sin(0.5 * double(i)));
    }
    return p;
  };
  AdamWOptions o{.lr = 1e-3, .weight_decay = 0.1};
  const int threads = num_threads();
  OwnedParam serial = make(), threaded = make();
  set_num_threads(1);
  AdamW s({serial.view()});
  s.step(o);
  s.step(o);
  set_num_threads(4);
  AdamW t({threaded.view()});
  t.step(o);
  t.step(o);
  set_num_threads(threads);
  EXPECT_EQ(std::memcmp(serial.value.data(), threaded.value.data(), n * sizeof(float)), 0);
  // And both follow the reference.
  for (size_t i : {size_t(0), size_t(12345), n - 1}) {
    RefAdamW r{double(float(std::cos(double(i))))};
    r.step(float(std::sin(0.5 * double(i))), 1, o, true);
    r.step(float(std::sin(0.5 * double(i))), 2, o, true);
    expect_rel(threaded.value[i], r.p, 1e-6, "big[" + std::to_string(i) + "]");
  }
}

TEST(AdamW, RejectsBadParamsAndOptions) {
  std::vector<float> v(4), g(3);
  Param p{"layer.weight", Tensor(v.data(), DType::F32, Shape{4}), Tensor(g.data(), DType::F32, Shape{3})};
  try {
    AdamW bad({p});
    FAIL() << "shape mismatch accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer.weight"), std::string::npos) << e.what();
  }
  p.grad = Tensor(g.data(), DType::F32, Shape{3});
  p.value = Tensor(v.data(), DType::F32, Shape{3});
  AdamW opt({p});
  EXPECT_THROW(opt.step({.lr = 1e-3, .beta1 = 1.0}), Error);
  EXPECT_THROW(opt.step({.lr = -1.0}), Error);
  EXPECT_EQ(opt.steps(), 0);
}

TEST(ClipGradNorm, ScalesOnlyAboveMaxNorm) {
  auto make = [] {
    return std::vector<OwnedParam>{{"a", {0, 0}, {3.0f, 4.0f}}, {"b", {0}, {12.0f}}};  // global norm 13
  };
  {
    auto owned = make();
    std::vector<Param> ps{owned[0].view(), owned[1].view()};
    EXPECT_DOUBLE_EQ(clip_grad_norm(ps, 1.0), 13.0);
    const double coef = 1.0 / (13.0 + 1e-6);
    expect_rel(owned[0].grad[0], 3.0 * coef, 1e-6, "a[0]");
    expect_rel(owned[0].grad[1], 4.0 * coef, 1e-6, "a[1]");
    expect_rel(owned[1].grad[0], 12.0 * coef, 1e-6, "b[0]");
    // The clipped gradient has norm max_norm (up to the 1e-6 guard).
    std::vector<Param> again{owned[0].view(), owned[1].view()};
    EXPECT_NEAR(clip_grad_norm(again, 0.0), 1.0, 1e-6);
  }
  for (double max_norm : {13.5, 100.0, 0.0, -1.0}) {  // above the norm, or clipping disabled
    auto owned = make();
    std::vector<Param> ps{owned[0].view(), owned[1].view()};
    EXPECT_DOUBLE_EQ(clip_grad_norm(ps, max_norm), 13.0);
    EXPECT_EQ(owned[0].grad[0], 3.0f);
    EXPECT_EQ(owned[0].grad[1], 4.0f);
    EXPECT_EQ(owned[1].grad[0], 12.0f);
  }
}

// transformers' lr lambdas, written out independently of the implementation.
double warmup_factor(int64_t s, int64_t w) { return double(s) / double(std::max<int64_t>(1, w)); }

TEST(LrSchedule, MatchesTransformersAtEveryStep) {
  const double lr = 2e-4;
  for (int64_t total : {1, 7, 100}) {
    for (int64_t warmup : {int64_t(0), int64_t(1), int64_t(3), total}) {
      if (warmup > total) continue;
      for (int64_t s = 0; s <= total; ++s) {
        const std::string at = "total " + std::to_string(total) + " warmup " + std::to_string(warmup) + " step " + std::to_string(s);
        double lin, cosv, con;
        if (s < warmup) {
          lin = cosv = con = warmup_factor(s, warmup);
        } else {
          const double rest = double(std::max<int64_t>(1, total - warmup));
          lin = std::max(0.0, double(total - s) / rest);
          // transformers' expression, num_cycles = 0.5 (same rounding as pi * progress).
          const double progress = double(s - warmup) / rest;
          cosv = std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * 0.5 * 2.0 * progress)));
          con = 1.0;
        }
        EXPECT_DOUBLE_EQ(lr_at("linear", lr, s, warmup, total), lr * lin) << at;
        EXPECT_DOUBLE_EQ(lr_at("cosine", lr, s, warmup, total), lr * cosv) << at;
        EXPECT_DOUBLE_EQ(lr_at("constant", lr, s, warmup, total), lr * con) << at;
        EXPECT_DOUBLE_EQ(lr_at("constant_with_warmup", lr, s, warmup, total), lr * con) << at;
      }
    }
  }
}

TEST(LrSchedule, KnownValues) {
  // 10 warmup steps, 110 total: halfway through warmup, end of warmup, halfway through decay.
  EXPECT_DOUBLE_EQ(lr_at("linear", 1.0, 0, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(lr_at("linear", 1.0, 5, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(lr_at("linear", 1.0, 10, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(lr_at("linear", 1.0, 60, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(lr_at("linear", 1.0, 110, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(lr_at("cosine", 1.0, 10, 10, 110), 1.0);
  EXPECT_NEAR(lr_at("cosine", 1.0, 60, 10, 110), 0.5, 1e-15);
  EXPECT_NEAR(lr_at("cosine", 1.0, 35, 10, 110), 0.5 * (1 + std::sqrt(0.5)), 1e-15);
  EXPECT_DOUBLE_EQ(lr_at("cosine", 1.0, 110, 10, 110), 0.0);
  // No warmup: the first step already uses the full rate.
  EXPECT_DOUBLE_EQ(lr_at("linear", 3e-4, 0, 0, 50), 3e-4);
  EXPECT_DOUBLE_EQ(lr_at("cosine", 3e-4, 0, 0, 50), 3e-4);
  EXPECT_DOUBLE_EQ(lr_at("constant", 3e-4, 49, 0, 50), 3e-4);
  // warmup == total: at the last step linear has decayed to 0, cosine is still at the top
  // (progress 0 over max(1, 0) steps), constant is flat.
  EXPECT_DOUBLE_EQ(lr_at("linear", 1.0, 4, 4, 4), 0.0);
  EXPECT_DOUBLE_EQ(lr_at("cosine", 1.0, 4, 4, 4), 1.0);
  EXPECT_DOUBLE_EQ(lr_at("constant", 1.0, 3, 4, 4), 0.75);
}

TEST(LrSchedule, RejectsUnknownSchedule) {
  try {
    lr_at("cosine_with_restarts", 1.0, 0, 0, 10);
    FAIL() << "accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cosine_with_restarts"), std::string::npos) << m;
    EXPECT_NE(m.find("constant, constant_with_warmup, linear, cosine"), std::string::npos) << m;
  }
}

TEST(WarmupSteps, StepsWinOverRatio) {
  EXPECT_EQ(warmup_steps_for(5, 0.5, 100), 5);
  EXPECT_EQ(warmup_steps_for(0, 0.1, 100), 10);
  EXPECT_EQ(warmup_steps_for(0, 0.25, 10), 3);  // ceil(2.5)
  EXPECT_EQ(warmup_steps_for(0, 0.1, 3), 1);    // 3 * 0.1 = 0.30000000000000004 -> 1, as Python
  EXPECT_EQ(warmup_steps_for(0, 0.0, 100), 0);
  EXPECT_EQ(warmup_steps_for(0, 1.0, 40), 40);
}

}  // namespace
}  // namespace brisk::train
