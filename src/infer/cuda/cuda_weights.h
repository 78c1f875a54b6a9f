// A model's weights on the GPU for inference: matrices and biases in bf16 (converted from f32,
// f16 or bf16, or dequantized from GGUF blocks, on the host), norm weights in f32. One planned
// device arena; LoRA adapters the same way, in their own arena.
#pragma once
#include <array>
#include <cstddef>
#include <vector>

#include <cuda_bf16.h>

#include "backend/cuda/device_buffer.h"
#include "model/config.h"
#include "model/lora.h"
#include "model/weights.h"

namespace brisk::infer {

using bf16 = __nv_bfloat16;

struct GpuLayer {
  const float *attn_norm = nullptr, *mlp_norm = nullptr, *q_norm = nullptr, *k_norm = nullptr;
  const bf16 *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
  const bf16 *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;  // null when absent
  const bf16 *w_gate = nullptr, *w_up = nullptr, *w_down = nullptr;
  // wq|wk|wv (and bq|bk|bv when present) are adjacent in memory, as are w_gate|w_up: a decode
  // step then runs one GEMV over the stacked rows instead of three (two). Set by upload_weights.
  bool qkv_stacked = false, gate_up_stacked = false;
};

struct GpuWeights {
  cuda::DeviceArena arena;
  const bf16* embed = nullptr;    // [V, H]
  const bf16* lm_head = nullptr;  // [V, H] (== embed when tied)
  const float* final_norm = nullptr;
  std::vector<GpuLayer> layers;
  size_t bytes = 0;           // device bytes of all weights
  size_t bytes_per_token = 0; // bytes a decode step reads: every matrix, bias and norm once, one embedding row
};

// Throws brisk::Error naming the bytes needed and free when the weights do not fit.
GpuWeights upload_weights(const ModelConfig& cfg, const ModelWeights& w);

struct GpuLoraModule {
  const bf16* A = nullptr;  // [r, in]
  const bf16* B = nullptr;  // [out, r]
};

struct GpuLora {
  cuda::DeviceArena arena;
  int r = 0;
  float scale = 0.0f;
  std::vector<std::array<GpuLoraModule, kNumProj>> layers;
  bf16* u = nullptr;  // scratch [max_tokens, r]: x A^T
};

GpuLora upload_lora(const ModelConfig& cfg, const LoraAdapter& a, int64_t max_tokens);

// One DeviceArena for `plan`, or a brisk::Error saying what it was for, how many bytes it needs
// and how many are free on the device.
cuda::DeviceArena allocate_planned(const MemoryPlan& plan, const char* what);

}  // namespace brisk::infer
