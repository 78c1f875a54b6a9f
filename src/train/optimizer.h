// AdamW with decoupled weight decay, global-norm gradient clipping, learning-rate schedules.
// State is f32 (m, v per parameter) and serialisable for bit-for-bit resume.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace brisk::train {

struct Param {
  std::string name;  // e.g. "model.layers.0.self_attn.q_proj.lora_A.weight"
  Tensor value;      // F32, updated in place
  Tensor grad;       // F32, same shape
  bool decay = true; // weight decay applies (HF: not to biases and norm weights)
};

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class AdamW {
 public:
  explicit AdamW(std::vector<Param> params);
  // One step with learning rate lr: exactly torch.optim.AdamW's update (decoupled decay
  // p -= lr*wd*p first, bias-corrected moments, eps added to sqrt(v_hat)).
  void step(const AdamWOptions& opt);
  int64_t steps() const { return t_; }
  std::vector<Param>& params() { return params_; }
  // Moments as named tensors ("<name>.exp_avg", "<name>.exp_avg_sq") for checkpoints.
  std::vector<std::pair<std::string, Tensor>> state_tensors();
  void set_steps(int64_t t) { t_ = t; }
  // ZeRO-1 (train/dist/zero1.h): another object keeps this rank's share of the moments, so
  // these are freed; restore_state() gives zeroed ones back (to gather a checkpoint into).
  // step() and state_tensors() need the moments.
  void release_state();
  void restore_state();
  bool has_state() const { return has_state_; }
  size_t state_bytes() const;

 private:
  std::vector<Param> params_;
  std::vector<std::vector<float>> m_, v_;
  int64_t t_ = 0;
  bool has_state_ = true;
};

// Global L2 norm over all grads (double accumulation); if max_norm > 0 and the norm exceeds
// it, scales grads by max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_ does.
// Returns the norm before clipping.
double clip_grad_norm(std::vector<Param>& params, double max_norm);

// Learning rate at optimizer step `step` (0-based) of `total` steps: linear warmup from 0 over
// `warmup` steps, then constant / linear decay to 0 / cosine decay to 0, exactly as
// transformers' get_{constant_with_warmup,linear,cosine}_schedule_with_warmup.
double lr_at(const std::string& schedule, double base_lr, int64_t step, int64_t warmup, int64_t total);
// Warmup steps from warmup_steps, or ceil(warmup_ratio * total) when warmup_steps == 0.
int64_t warmup_steps_for(int64_t warmup_steps, double warmup_ratio, int64_t total);

}  // namespace brisk::train
