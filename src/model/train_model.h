// Training: the explicit forward and backward pass of the decoder over a packed batch, for
// LoRA (frozen base, gradients for the adapter) or full fine-tuning (gradients for every
// weight). Hand-derived per block, as in llm.c; the recompute policy changes what is stored
// (every activation, or only each layer's input) and not the code: with `full`, each layer's
// forward is re-run from its saved input just before its backward.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "model/lora.h"
#include "model/model.h"

namespace brisk {

// What the backward pass reads from memory and what it recomputes: None stores every
// activation; Selective (CUDA) stores layer inputs plus attention outputs and recomputes the
// rest; Full stores only layer inputs. The CPU trainer treats Selective as Full.
enum class Recompute { None, Selective, Full };
// "none" | "selective" | "full"; throws naming the value otherwise.
Recompute parse_recompute(const std::string& s);

// A micro-batch: sequences concatenated. Segment s is tokens cu_seqlens[s] .. cu_seqlens[s+1]-1;
// positions restart per segment; labels aligned with ids (the loss predicts labels[i+1] from
// tokens <= i inside a segment), -100 = not trained.
struct TokenBatch {
  std::vector<int32_t> ids, labels, positions, cu_seqlens;
  int64_t size() const { return int64_t(ids.size()); }
  int64_t label_count() const;  // targets that count in the loss (after the shift)
};

// `batch` sequences of `seq` uniformly random token ids below `vocab`, every token a target
// (benchmarks: the CPU and GPU `bench train` use the same batch for the same seed).
TokenBatch random_token_batch(int64_t vocab, int64_t batch, int64_t seq, uint64_t seed);

struct TrainGrad {
  std::string name;  // HF or PEFT tensor name
  Tensor value, grad;
  bool decay;        // weight decay applies (not biases, not norm weights)
};

// Full fine-tuning's trainable tensors: every weight of `w` in weight_specs order (HF names), with
// weight decay on all but norm weights and biases (the HF Trainer's rule), minus the embeddings
// and/or the LM head when frozen. grad: each tensor's gradient from `grads` (same layout as w),
// or undefined when grads is null (the GPU trainer keeps gradients on the device). Both trainers
// build their parameter list here, so checkpoints name and order the tensors identically.
std::vector<TrainGrad> full_finetune_params(const ModelConfig& c, ModelWeights& w, ModelWeights* grads,
                                            bool train_embed, bool train_head);

class TrainModel {
 public:
  // lora == nullptr means full fine-tuning of `model`'s weights.
  TrainModel(Model& model, LoraAdapter* lora, Recompute recompute, bool freeze_embeddings = false,
             bool freeze_lm_head = false);
  ~TrainModel();

  // Runs forward and backward; gradients ACCUMULATE (call zero_grad() per optimizer step).
  // The loss gradient is scaled by grad_scale (1 / target tokens of the optimizer step, so
  // accumulation gives the mean over the step). dropout_seed keys the LoRA dropout masks.
  // Returns the SUM of token losses of this batch.
  double forward_backward(const TokenBatch& batch, float grad_scale, uint64_t dropout_seed);
  // Forward only (evaluation): sum of token losses; no gradients, no dropout.
  double loss_only(const TokenBatch& batch);

  void zero_grad();
  std::vector<TrainGrad>& params() { return params_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<TrainGrad> params_;
};

}  // namespace brisk
