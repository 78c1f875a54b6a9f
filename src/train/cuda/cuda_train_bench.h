// `brisk bench train --device cuda`: LoRA or full fine-tuning throughput on the GPU for a preset
// shape with random weights made on the device (an 8B model needs no host copy and no disk), and
// the measured peak memory against the plan.
#pragma once
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/lora.h"
#include "model/train_model.h"

namespace brisk::train {

class Communicator;

struct CudaTrainBenchArgs {
  ModelConfig model;
  LoraSpec lora;
  bool full = false;  // full fine-tuning (lora is ignored)
  Recompute recompute = Recompute::None;
  int64_t batch = 2, seq = 2048, steps = 5;
  // Data parallel (`brisk bench train --gpus N`): this rank's communicator (NCCL). Each rank
  // trains its own batch of batch x seq tokens; the gradients are summed after every backward
  // (the trainer's all-reduce of the gradient arena); tokens/s counts all ranks.
  Communicator* comm = nullptr;
};

// Model FLOPs per trained token (what "achieved TFLOP/s" counts; recomputation not counted):
// base linears forward + input-gradient backward (4 N), LM head the same (4 H V), LoRA forward +
// both gradients (6 r (in + out) per module), causal attention forward 4 * avg_ctx * nh * hd
// per layer and backward 2.5x that (the FlashAttention convention).
double lora_train_flops_per_token(const ModelConfig& c, const LoraSpec& s, int64_t seq);
// Full fine-tuning: the same plus the weight gradients of every linear and the LM head (2 N + 2 H V).
double full_train_flops_per_token(const ModelConfig& c, int64_t seq);

// Runs one warm-up step and `steps` timed ones; returns the JSON line's fields.
nlohmann::json run_cuda_train_bench(const CudaTrainBenchArgs& a);

}  // namespace brisk::train
