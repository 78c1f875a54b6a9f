// AdamW, gradient clipping and LR schedules, replicating PyTorch / transformers numerics.
//
// The reference is torch.optim.AdamW on CPU with the defaults (foreach=False on CPU tensors,
// amsgrad=False, maximize=False), i.e. torch.optim.adam._single_tensor_adam with
// decoupled_weight_decay=True. Per step t (1-based) and parameter p it does, in this order:
//
//   p.mul_(1 - lr*wd)                              # scalar computed in double, applied as float
//   exp_avg.lerp_(grad, 1 - beta1)                 # m += (1-b1) * (g - m)
//   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//   bias_correction1 = 1 - beta1**t                # Python floats (double)
//   bias_correction2_sqrt = (1 - beta2**t) ** 0.5
//   step_size = lr / bias_correction1
//   denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
//   p.addcdiv_(exp_avg, denom, value=-step_size)   # p + (-step_size * m) / denom
//
// Tensor ops run in float with the Python scalars rounded to float, so we do the same. ATen's
// vectorised lerp is a fused multiply-add (fmadd(w, end - self, self) for w < 0.5), which we
// reproduce with std::fma; the other expressions are evaluated exactly as ATen's kernels
// write them. This file is compiled with -ffp-contract=off (CMakeLists.txt) so the compiler
// fuses nothing else: the update is deterministic, which bit-for-bit resume relies on.
#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/thread_pool.h"

namespace brisk::train {
namespace {

// Elements per parallel chunk: the update is ~10 flops per element, so below this a thread
// hand-off costs more than it saves.
constexpr int64_t kParallelGrain = 1 << 15;

void check_param(const Param& p) {
  BRISK_CHECK(p.value.defined() && p.grad.defined(), "optimizer: parameter '", p.name, "' has no value or gradient");
  BRISK_CHECK(p.value.dtype == DType::F32 && p.grad.dtype == DType::F32, "optimizer: parameter '", p.name,
              "' must be F32 (value ", p.value.desc(), ", grad ", p.grad.desc(), ")");
  BRISK_CHECK(p.value.device == Device::CPU && p.grad.device == Device::CPU, "optimizer: parameter '", p.name,
              "' must be on the CPU (value ", p.value.desc(), ", grad ", p.grad.desc(), ")");
  BRISK_CHECK(p.value.shape == p.grad.shape, "optimizer: parameter '", p.name, "' value ", p.value.shape.str(),
              " and gradient ", p.grad.shape.str(), " differ in shape");
  BRISK_CHECK(p.value.is_contiguous() && p.grad.is_contiguous(), "optimizer: parameter '", p.name,
              "' must be contiguous");
}

void check_options(const AdamWOptions& o) {
  // Same domain checks as torch.optim.AdamW's constructor.
  BRISK_CHECK(o.lr >= 0, "AdamW: invalid learning rate ", o.lr);
  BRISK_CHECK(o.eps >= 0, "AdamW: invalid epsilon ", o.eps);
  BRISK_CHECK(o.beta1 >= 0 && o.beta1 < 1, "AdamW: invalid beta1 ", o.beta1, " (must be in [0, 1))");
  BRISK_CHECK(o.beta2 >= 0 && o.beta2 < 1, "AdamW: invalid beta2 ", o.beta2, " (must be in [0, 1))");
  BRISK_CHECK(o.weight_decay >= 0, "AdamW: invalid weight_decay ", o.weight_decay);
}

}  // namespace

AdamW::AdamW(std::vector<Param> params) : params_(std::move(params)) {
  m_.reserve(params_.size());
  v_.reserve(params_.size());
  for (const Param& p : params_) {
    check_param(p);
    m_.emplace_back(size_t(p.value.numel()), 0.0f);
    v_.emplace_back(size_t(p.value.numel()), 0.0f);
  }
}

void AdamW::release_state() {
  for (auto* s : {&m_, &v_})
    for (auto& x : *s) std::vector<float>().swap(x);
  has_state_ = false;
}

void AdamW::restore_state() {
  for (auto* s : {&m_, &v_})
    for (size_t i = 0; i < params_.size(); ++i) (*s)[i].assign(size_t(params_[i].value.numel()), 0.0f);
  has_state_ = true;
}

size_t AdamW::state_bytes() const {
  size_t n = 0;
  for (auto* s : {&m_, &v_})
    for (auto& x : *s) n += x.capacity() * sizeof(float);
  return n;
}

void AdamW::step(const AdamWOptions& opt) {
  BRISK_ASSERT(has_state_, "AdamW::step after release_state()");
  check_options(opt);
  ++t_;
  // Python-side scalars, in double exactly as torch computes them, then rounded to float
  // where ATen converts a Scalar argument to the tensor's dtype.
  const double t = double(t_);
  const double bias_correction1 = 1.0 - std::pow(opt.beta1, t);
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(opt.beta2, t));
  const double step_size = opt.lr / bias_correction1;
  const float decay_scale = float(1.0 - opt.lr * opt.weight_decay);
  const float m_weight = float(1.0 - opt.beta1);
  const float beta2 = float(opt.beta2);
  const float v_weight = float(1.0 - opt.beta2);
  const float bc2_sqrt = float(bias_correction2_sqrt);
  const float eps = float(opt.eps);
  const float neg_step_size = float(-step_size);
  // ATen's lerp switches formula at |weight| >= 0.5 to stay accurate near weight 1.
  const bool small_weight = std::fabs(m_weight) < 0.5f;

  for (size_t i = 0; i < params_.size(); ++i) {
    float* p = params_[i].value.f32();
    const float* g = params_[i].grad.f32();
    float* m = m_[i].data();
    float* v = v_[i].data();
    const bool decay = params_[i].decay && opt.weight_decay != 0.0;
    parallel_for(params_[i].value.numel(), kParallelGrain, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        if (decay) p[j] = p[j] * decay_scale;
        const float gj = g[j];
        m[j] = small_weight ? std::fma(m_weight, gj - m[j], m[j]) : std::fma(m_weight - 1.0f, gj - m[j], gj);
        v[j] = v[j] * beta2;
        v[j] = v[j] + v_weight * gj * gj;
        const float denom = std::sqrt(v[j]) / bc2_sqrt + eps;
        p[j] = p[j] + neg_step_size * m[j] / denom;
      }
    });
  }
}

std::vector<std::pair<std::string, Tensor>> AdamW::state_tensors() {
  BRISK_ASSERT(has_state_, "AdamW::state_tensors after release_state()");
  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(2 * params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const Shape& s = params_[i].value.shape;
    out.emplace_back(params_[i].name + ".exp_avg", Tensor(m_[i].data(), DType::F32, s));
    out.emplace_back(params_[i].name + ".exp_avg_sq", Tensor(v_[i].data(), DType::F32, s));
  }
  return out;
}

double clip_grad_norm(std::vector<Param>& params, double max_norm) {
  double sum_sq = 0.0;
  for (const Param& p : params) {
    check_param(p);
    const float* g = p.grad.f32();
    const int64_t n = p.grad.numel();
    for (int64_t j = 0; j < n; ++j) sum_sq += double(g[j]) * double(g[j]);
  }
  const double norm = std::sqrt(sum_sq);
  if (!(max_norm > 0)) return norm;
  // torch: total_norm is a float tensor; `max_norm / (total_norm + 1e-6)` is Tensor.__rtruediv__,
  // i.e. reciprocal(total_norm + 1e-6) * max_norm, in float; the clamped coefficient multiplies
  // every grad (a no-op at 1.0, so we skip it). A non-finite norm leaves the grads untouched
  // (torch would turn them into NaN): the trainer sees the norm and skips the step.
  const float coef = (1.0f / (float(norm) + 1e-6f)) * float(max_norm);
  if (!(coef < 1.0f)) return norm;
  for (Param& p : params) {
    float* g = p.grad.f32();
    parallel_for(p.grad.numel(), kParallelGrain, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) g[j] = g[j] * coef;
    });
  }
  return norm;
}

double lr_at(const std::string& schedule, double base_lr, int64_t step, int64_t warmup, int64_t total) {
  BRISK_CHECK(step >= 0 && warmup >= 0 && total >= 0, "lr schedule: negative step (", step, "), warmup (", warmup,
              ") or total (", total, ")");
  // transformers' lr_lambda functions, term by term (Python float arithmetic = double).
  // "constant" applies the warmup too: with warmup 0 it equals get_constant_schedule, with
  // warmup > 0 it is get_constant_schedule_with_warmup (HF's plain "constant" ignores warmup).
  const bool known = schedule == "constant" || schedule == "constant_with_warmup" || schedule == "linear" ||
                     schedule == "cosine";
  BRISK_CHECK(known, "unknown lr_scheduler '", schedule, "' (valid: constant, constant_with_warmup, linear, cosine)");
  double factor;
  if (step < warmup) {
    factor = double(step) / double(std::max<int64_t>(1, warmup));
  } else if (schedule == "linear") {
    factor = std::max(0.0, double(total - step) / double(std::max<int64_t>(1, total - warmup)));
  } else if (schedule == "cosine") {
    constexpr double num_cycles = 0.5;
    const double progress = double(step - warmup) / double(std::max<int64_t>(1, total - warmup));
    factor = std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * num_cycles * 2.0 * progress)));
  } else {
    factor = 1.0;
  }
  return base_lr * factor;
}

int64_t warmup_steps_for(int64_t warmup_steps, double warmup_ratio, int64_t total) {
  // TrainingArguments.get_warmup_steps.
  if (warmup_steps > 0) return warmup_steps;
  return int64_t(std::ceil(double(total) * warmup_ratio));
}

}  // namespace brisk::train
