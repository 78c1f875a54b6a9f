// LoRA and full fine-tuning on the GPU: the same hand-written per-block forward and backward as
// model/train_model.cpp (the CPU reference), with bf16 weights and activations, fp32
// accumulation, cuBLASLt GEMMs, the flash-attention kernel, a chunked LM head + cross-entropy,
// and the optimizer on the device (fp32 master weights, gradients and AdamW moments in arenas of
// identical layout, so clipping is a single launch). LoRA: the adapter's tensors, one AdamW
// launch. Full fine-tuning: every weight (model/cuda/cuda_train_params.h): bf16 working copies
// for the GEMMs refreshed from the f32 masters after each step, AdamW per tensor (norm weights
// and biases take no weight decay), the gradients of every projection, bias, norm weight, the
// embeddings and the LM head (the same tensor when tied).
//
// Every buffer comes from arenas sized by model/train_memory.h's plan before the first step.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/lora.h"
#include "model/model.h"
#include "model/train_memory.h"
#include "model/train_model.h"

namespace brisk::train {
class AdamW;
struct AdamWOptions;
}  // namespace brisk::train

namespace brisk::cuda {

class CudaTrainModel {
 public:
  // Copies model's weights to the GPU (bf16) and lora's tensors as the initial adapter.
  // max_tokens bounds the tokens of one micro-batch (activations are planned for it).
  CudaTrainModel(const Model& model, const LoraAdapter& lora, Recompute recompute, int64_t max_tokens);
  // Benchmarks: random bf16 weights made on the GPU (nothing copied from the host).
  CudaTrainModel(const ModelConfig& cfg, const LoraSpec& spec, Recompute recompute, int64_t max_tokens,
                 uint64_t seed);
  // Full fine-tuning of every weight of `model` (f32 host weights, as Model::load gives them),
  // except the embeddings / the LM head when frozen (TrainConfig freeze_embeddings / lm_head).
  CudaTrainModel(Model& model, Recompute recompute, int64_t max_tokens, bool freeze_embeddings = false,
                 bool freeze_lm_head = false);
  // Benchmarks: full fine-tuning of random bf16 weights made on the GPU (masters from them).
  CudaTrainModel(const ModelConfig& cfg, Recompute recompute, int64_t max_tokens, uint64_t seed);
  ~CudaTrainModel();
  bool full_finetuning() const;

  // Same contract as TrainModel: gradients accumulate; returns the sum of token losses.
  double forward_backward(const TokenBatch& batch, float grad_scale, uint64_t dropout_seed);
  double loss_only(const TokenBatch& batch);
  // Global L2 norm of the gradients; scales them to max_norm when above it (max_norm > 0).
  double clip_grad_norm(double max_norm);
  // One AdamW step over every trainable tensor (torch semantics), then zeroes the gradients.
  void optimizer_step(const train::AdamWOptions& o);
  void zero_grad();
  int64_t optimizer_steps() const;

  // Host <-> device copies for checkpoints: the adapter's f32 tensors and the AdamW moments
  // (in the order of the host optimizer's params: every module's A then B, layer by layer).
  void download(LoraAdapter& lora, train::AdamW* opt) const;
  void upload(const LoraAdapter& lora, train::AdamW* opt, int64_t steps);
  // Full fine-tuning's twins: the trainable f32 masters into (from) the host model's weights and
  // the moments into (from) opt, whose params are full_finetune_params(model) (model/train_model.h)
  // as the CPU engine's are, so the checkpoint files are the same.
  void download(Model& model, train::AdamW* opt) const;
  void upload(Model& model, train::AdamW* opt, int64_t steps);
  // Full fine-tuning: the accumulated f32 gradient of the trainable weight `hf_name`.
  std::vector<float> gradient(const std::string& hf_name) const;

  // The accumulated gradients, into an adapter-shaped host object (tests compare them with
  // the CPU trainer's).
  void download_grads(LoraAdapter& grads) const;

  // The f32 gradient arena (every adapter tensor's gradient, zero padding between them) for the
  // data-parallel all-reduce (train/dist/), and a wait for this model's stream to drain.
  float* grad_arena();
  size_t grad_arena_floats() const;
  void synchronize() const;

  const TrainMemoryPlan& plan() const;
  // Device memory in use by this process now (cudaMemGetInfo: total - free) and the lowest free
  // seen since construction, for checking the plan.
  static size_t device_used_bytes();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Why the GPU cannot train here ("" when it can): no device, compute capability < 8.0.
std::string cuda_training_unavailable_reason();

}  // namespace brisk::cuda
