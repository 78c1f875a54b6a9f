#include "train/cuda/cuda_train_engine.h"

#include "core/error.h"
#include "core/log.h"
#include "model/cuda/cuda_train_model.h"
#include "train/train_config.h"

namespace brisk::train {
namespace {

// What both GPU engines (LoRA, full) hand to their CudaTrainModel unchanged.
class CudaEngineBase : public TrainEngine {
 public:
  std::string device() const override { return "cuda"; }
  double forward_backward(const TokenBatch& b, float s, uint64_t seed) override {
    return gpu().forward_backward(b, s, seed);
  }
  double loss_only(const TokenBatch& b) override { return gpu().loss_only(b); }
  double clip_grad_norm(double max_norm) override { return gpu().clip_grad_norm(max_norm); }
  void optimizer_step(const AdamWOptions& o) override { gpu().optimizer_step(o); }
  std::vector<GradSpan> gradient_spans() override {
    gpu().synchronize();  // backward's gradient writes are complete before another stream reads them
    return {{gpu().grad_arena(), gpu().grad_arena_floats()}};
  }
  bool gradients_on_device() const override { return true; }

 protected:
  virtual cuda::CudaTrainModel& gpu() = 0;
};

class CudaTrainEngine : public CudaEngineBase {
 public:
  CudaTrainEngine(Model& model, LoraAdapter& lora, Recompute rc, int64_t max_tokens)
      : lora_(lora), gpu_(model, lora, rc, max_tokens), adam_(host_params(lora)) {
    log_info("training on the GPU; memory plan:\n", gpu_.plan().table());
  }
  std::vector<TrainGrad>& params() override { return params_; }
  AdamW& optimizer() override { return adam_; }
  void sync_to_host() override { gpu_.download(lora_, &adam_); }
  void sync_from_host() override { gpu_.upload(lora_, &adam_, adam_.steps()); }

 protected:
  cuda::CudaTrainModel& gpu() override { return gpu_; }

 private:
  // The host adapter's tensors in TrainModel's order (each module's A, then B), with host
  // gradient buffers that stay unused (gradients live on the GPU).
  std::vector<Param> host_params(LoraAdapter& lora) {
    std::vector<Param> p;
    for (size_t l = 0; l < lora.layers.size(); ++l)
      for (int j = 0; j < kNumProj; ++j) {
        const LoraModule& m = lora.layers[l][size_t(j)];
        if (!m.defined()) continue;
        for (bool is_b : {false, true}) {
          const Tensor& t = is_b ? m.B : m.A;
          std::string name = LoraAdapter::peft_name(int64_t(l), Proj(j), is_b);
          params_.push_back({name, t, Tensor(), true});
          p.push_back({name, t, t, true});  // AdamW only sizes its moments from these
        }
      }
    return p;
  }
  LoraAdapter& lora_;
  std::vector<TrainGrad> params_;
  cuda::CudaTrainModel gpu_;
  AdamW adam_;
};

// Full fine-tuning on the GPU. The host model's f32 weights are the checkpointed tensors
// (params() is the CPU engine's list, full_finetune_params), refreshed by sync_to_host().
class CudaFullTrainEngine : public CudaEngineBase {
 public:
  CudaFullTrainEngine(Model& model, Recompute rc, int64_t max_tokens, bool freeze_embed, bool freeze_head)
      : model_(model),
        params_(full_finetune_params(model.config(), model.weights(), nullptr, !freeze_embed, !freeze_head)),
        gpu_(model, rc, max_tokens, freeze_embed, freeze_head),
        adam_(host_params(params_)) {
    log_info("training on the GPU; memory plan:\n", gpu_.plan().table());
  }
  std::vector<TrainGrad>& params() override { return params_; }
  AdamW& optimizer() override { return adam_; }
  void sync_to_host() override { gpu_.download(model_, &adam_); }
  void sync_from_host() override { gpu_.upload(model_, &adam_, adam_.steps()); }

 protected:
  cuda::CudaTrainModel& gpu() override { return gpu_; }

 private:
  // AdamW only sizes its moments from these (the gradients live on the GPU).
  static std::vector<Param> host_params(const std::vector<TrainGrad>& ps) {
    std::vector<Param> p;
    for (const TrainGrad& g : ps) p.push_back({g.name, g.value, g.value, g.decay});
    return p;
  }
  Model& model_;
  std::vector<TrainGrad> params_;
  cuda::CudaTrainModel gpu_;
  AdamW adam_;
};

}  // namespace

std::string cuda_train_engine_unavailable(const TrainConfig& cfg) {
  std::string why = cuda::cuda_training_unavailable_reason();
  (void)cfg;  // every method (lora, full) trains on the GPU
  return why;
}

std::unique_ptr<TrainEngine> make_cuda_train_engine(const TrainConfig& cfg, Model& model, LoraAdapter* lora,
                                                    Recompute rc, int64_t max_tokens) {
  if (cfg.method == "full") {
    BRISK_ASSERT(lora == nullptr);
    return std::make_unique<CudaFullTrainEngine>(model, rc, max_tokens, cfg.freeze_embeddings, cfg.freeze_lm_head);
  }
  BRISK_ASSERT(lora != nullptr);
  return std::make_unique<CudaTrainEngine>(model, *lora, rc, max_tokens);
}

}  // namespace brisk::train
