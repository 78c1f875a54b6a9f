// The GPU memory of a training job, computed from the model config and the training shape
// before anything is allocated: weights, LoRA parameters, gradients, optimizer state,
// activations (per recompute policy) and workspace. The CUDA trainer allocates exactly these
// buffers (it carves its arenas through the same functions), so the plan is the allocation;
// `brisk plan` prints it and `brisk train` refuses to start when it exceeds the free memory.
#pragma once
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "core/arena.h"
#include "model/config.h"
#include "model/lora.h"
#include "model/train_model.h"

namespace brisk {

struct TrainShape {
  int64_t tokens = 0;                  // tokens per micro-batch (batch * seq)
  Recompute recompute = Recompute::None;
  bool lora = true;                    // false: full fine-tuning
  int lora_r = 16;
  std::array<bool, kNumProj> lora_targets{};
  bool lora_dropout = false;
};

// Rows of logits computed at once by the LM head + cross-entropy (bounds the [rows, V] buffer).
int64_t cross_entropy_chunk_rows(const ModelConfig& c, int64_t tokens);
// Bytes the flash-attention backward may use as scratch for T tokens (planned upper bound).
size_t attention_scratch_bytes(const ModelConfig& c, int64_t tokens);

// Activations of one layer on the GPU (bf16 unless noted). Which of them are per layer and
// which are shared scratch depends on the recompute policy:
//   none:      every field per layer (backward reads them all)
//   selective: x_in, attn and lse per layer; the rest recomputed (projections, norms, MLP) into
//              shared scratch; attention itself is not recomputed
//   full:      only x_in per layer; the whole layer is recomputed before its backward
struct GpuLayerActs {
  Tensor x_in, xn, q_raw, k_raw, q, k, v, attn, lse /*f32 [T, nh]*/, x_mid, xn2, gate, up, h;
  std::array<Tensor, kNumProj> u;  // LoRA dropout(x) A^T, [T, r]
};

struct GpuActivations {
  std::vector<GpuLayerActs> layers;  // [L]
  Tensor x_final;                    // [T, H] output of the last layer
  Tensor xf, dres, dmid, dxn, dq, dk, dv, dq_raw, dk_raw, dattn, dgate, dup, dh, du, xd, tmp;
  Tensor logits;                     // [chunk, V] bf16 (dlogits in place)
  Tensor row_loss;                   // [T] f32
  Tensor ids, targets, positions, cu_seqlens;  // i32 [T], [T], [T], [T + 1]
  Tensor partial;                    // f32 [1024] reduction partials
  Tensor attn_scratch;               // U8 [attention_scratch_bytes]
  Tensor norm_scratch;               // f32, rmsnorm backward partials (full fine-tuning)
};

// Lays out the activations for `shape`: with alloc == nullptr only records sizes into *plan;
// otherwise also points every tensor at alloc(bytes) (called in the same order as the plan).
GpuActivations layout_gpu_activations(const ModelConfig& c, const TrainShape& shape, MemoryPlan* plan,
                                      const std::function<void*(size_t)>& alloc);

struct TrainMemoryPlan {
  struct Part {
    std::string name;
    size_t bytes;
    std::string detail;
  };
  std::vector<Part> parts;  // weights, lora, gradients, optimizer, activations, workspace
  size_t total() const;
  std::string table() const;  // human-readable breakdown, one part per line
};

// Full fine-tuning on the GPU: the f32 master weights, gradients and AdamW moments are four
// arenas of this one layout, every weight of weight_specs(c) (same order) at an offset that is a
// multiple of 64 floats (256 bytes, so bf16 views stay aligned for cuBLASLt); the padding stays
// zero. The CUDA trainer places its tensors with it and the plan counts it.
struct FullParamLayout {
  std::vector<size_t> offsets;  // element offset of weight_specs(c)[i]
  size_t floats = 0;            // elements of one arena, padding included
};
FullParamLayout full_param_layout(const ModelConfig& c);
// Bytes of one such arena as the trainer allocates it (the floats plus one arena alignment).
size_t full_param_arena_bytes(const ModelConfig& c);

// cuBLASLt workspace the trainer reserves.
constexpr size_t kGemmWorkspaceBytes = size_t(32) << 20;

TrainMemoryPlan plan_train_memory(const ModelConfig& c, const TrainShape& shape);

}  // namespace brisk
