#include "train/train_engine.h"

#include "core/error.h"
#include "core/log.h"
#include "train/dist/zero1.h"
#include "train/train_config.h"

#ifdef BRISK_HAVE_CUDA
#include "train/cuda/cuda_train_engine.h"
#endif

namespace brisk::train {
namespace {

class CpuTrainEngine : public TrainEngine {
 public:
  CpuTrainEngine(Model& model, LoraAdapter* lora, Recompute rc, bool freeze_embed, bool freeze_head)
      : tm_(model, lora, rc, freeze_embed, freeze_head), adam_(to_params(tm_)) {}
  std::string device() const override { return "cpu"; }
  double forward_backward(const TokenBatch& b, float s, uint64_t seed) override { return tm_.forward_backward(b, s, seed); }
  double loss_only(const TokenBatch& b) override { return tm_.loss_only(b); }
  double clip_grad_norm(double max_norm) override { return train::clip_grad_norm(adam_.params(), max_norm); }
  void optimizer_step(const AdamWOptions& o) override {
    if (zero_) zero_->step(o);
    else adam_.step(o);
    tm_.zero_grad();
  }
  void enable_zero1(Communicator& comm) override { zero_ = std::make_unique<Zero1Optimizer>(adam_, comm); }
  void gather_optimizer_state(int saver) override {
    if (zero_) zero_->gather(saver);
  }
  void release_optimizer_state() override {
    if (zero_) zero_->release();
  }
  size_t optimizer_state_bytes() override { return zero_ ? zero_->state_bytes() : adam_.state_bytes(); }
  std::vector<TrainGrad>& params() override { return tm_.params(); }
  AdamW& optimizer() override { return adam_; }
  std::vector<GradSpan> gradient_spans() override {
    std::vector<GradSpan> s;
    for (TrainGrad& g : tm_.params()) s.push_back({g.grad.f32(), size_t(g.grad.numel())});
    return s;
  }

 private:
  static std::vector<Param> to_params(TrainModel& tm) {
    std::vector<Param> p;
    for (TrainGrad& g : tm.params()) p.push_back({g.name, g.value, g.grad, g.decay});
    return p;
  }
  TrainModel tm_;
  AdamW adam_;
  std::unique_ptr<Zero1Optimizer> zero_;  // ZeRO-1: the moments of this rank's shard
};

}  // namespace

void TrainEngine::enable_zero1(Communicator&) {
  throw Error(cat("zero: 1 (optimizer-state sharding) is implemented for the CPU engine; the ", device(),
                  " engine keeps the whole optimizer state on every rank"));
}

TrainShape train_shape(const TrainConfig& cfg, const ModelConfig& mc, int64_t max_tokens) {
  TrainShape s;
  s.tokens = max_tokens;
  s.recompute = parse_recompute(cfg.recompute);
  s.lora = cfg.method == "lora";
  if (s.lora) {  // full fine-tuning keeps the shape's LoRA fields empty, as the CUDA trainer does
    s.lora_r = int(cfg.lora.r);
    s.lora_targets = parse_target_modules(cfg.lora.target_modules);
    s.lora_dropout = cfg.lora.dropout > 0;
  } else {
    s.lora_r = 0;
  }
  (void)mc;
  return s;
}

std::unique_ptr<TrainEngine> make_train_engine(const TrainConfig& cfg, Model& model, LoraAdapter* lora,
                                               int64_t max_tokens) {
  const Recompute rc = parse_recompute(cfg.recompute);
  bool cuda = false;
#ifdef BRISK_HAVE_CUDA
  std::string why = cuda_train_engine_unavailable(cfg);
  if (cfg.device == "cuda") BRISK_CHECK(why.empty(), "device: cuda: ", why);
  cuda = why.empty() && cfg.device != "cpu";
  if (cfg.device == "auto" && !why.empty()) log_info("training on the CPU (", why, ")");
  if (cuda) return make_cuda_train_engine(cfg, model, lora, rc, max_tokens);
#else
  BRISK_CHECK(cfg.device != "cuda", "device: cuda: this brisk was built without CUDA (CPU-only build)");
#endif
  (void)cuda;
  (void)max_tokens;
  return std::make_unique<CpuTrainEngine>(model, lora, rc, cfg.freeze_embeddings, cfg.freeze_lm_head);
}

}  // namespace brisk::train
