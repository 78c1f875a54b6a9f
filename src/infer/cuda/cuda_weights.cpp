#include "infer/cuda/cuda_weights.h"

#include <cuda_runtime.h>

#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/quant.h"
#include "core/thread_pool.h"

namespace brisk::infer {
namespace {

// Host conversion of any weight tensor (F32/F16/BF16 or GGUF blocks) to bf16, row-parallel.
std::vector<uint16_t> to_bf16(const Tensor& t) {
  BRISK_ASSERT(t.device == Device::CPU && t.is_contiguous(), "weight ", t.desc(), " must be a contiguous host tensor");
  const int64_t n = t.numel();
  std::vector<uint16_t> out(static_cast<size_t>(n));
  if (dtype_is_quantized(t.dtype)) {
    BRISK_ASSERT(t.ndim() == 2, "quantized weight ", t.desc(), " must be 2-D");
    const int64_t rows = t.dim(0), cols = t.dim(1);
    const size_t row_bytes = dtype_row_bytes(t.dtype, cols);
    parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = r0; r < r1; ++r) {
        quant::dequantize_row(t.dtype, static_cast<const uint8_t*>(t.data) + size_t(r) * row_bytes, row.data(), cols);
        for (int64_t c = 0; c < cols; ++c) out[size_t(r * cols + c)] = f32_to_bf16(row[size_t(c)]);
      }
    });
    return out;
  }
  BRISK_ASSERT(dtype_is_float(t.dtype), "weight ", t.desc(), " has no float type");
  const size_t es = dtype_size(t.dtype);
  parallel_for(n, 1 << 16, [&](int64_t i0, int64_t i1) {
    convert_floats(static_cast<const uint8_t*>(t.data) + size_t(i0) * es, t.dtype, out.data() + i0, DType::BF16,
                   size_t(i1 - i0));
  });
  return out;
}

std::vector<float> to_f32(const Tensor& t) {
  BRISK_ASSERT(t.device == Device::CPU && t.is_contiguous() && dtype_is_float(t.dtype), "norm weight ", t.desc());
  std::vector<float> out(size_t(t.numel()));
  convert_floats(t.data, t.dtype, out.data(), DType::F32, out.size());
  return out;
}

// Carves and fills one tensor (bf16 or f32) in the arena; null for an undefined tensor.
template <typename T> const T* put(cuda::DeviceArena& arena, const Tensor& t, size_t* per_token) {
  if (!t.defined()) return nullptr;
  void* dst;
  size_t bytes;
  if constexpr (sizeof(T) == 2) {
    std::vector<uint16_t> h = to_bf16(t);
    bytes = h.size() * 2;
    dst = arena.alloc(bytes);
    cuda::copy_to_device(dst, h.data(), bytes);
  } else {
    std::vector<float> h = to_f32(t);
    bytes = h.size() * 4;
    dst = arena.alloc(bytes);
    cuda::copy_to_device(dst, h.data(), bytes);
  }
  if (per_token) *per_token += bytes;
  return static_cast<const T*>(dst);
}

void plan_tensor(MemoryPlan& plan, const Tensor& t, DType as, const char* name) {
  if (t.defined()) plan.add(name, as, t.shape);
}

}  // namespace

cuda::DeviceArena allocate_planned(const MemoryPlan& plan, const char* what) {
  size_t free_b = 0, total_b = 0;
  BRISK_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const size_t need = plan.total();
  BRISK_CHECK(need <= free_b, "out of GPU memory for the ", what, ": needs ", format_bytes(double(need)), " (", need,
              " bytes), ", format_bytes(double(free_b)), " free of ", format_bytes(double(total_b)));
  try {
    return cuda::DeviceArena(need);
  } catch (const Error& e) {
    throw Error(cat("out of GPU memory for the ", what, ": needs ", format_bytes(double(need)), ", ",
                    format_bytes(double(free_b)), " free (", e.what(), ")"));
  }
}

GpuWeights upload_weights(const ModelConfig& cfg, const ModelWeights& w) {
  MemoryPlan plan;
  plan_tensor(plan, w.embed, DType::BF16, "embed");
  plan_tensor(plan, w.final_norm, DType::F32, "final_norm");
  if (!cfg.tie_word_embeddings) plan_tensor(plan, w.lm_head, DType::BF16, "lm_head");
  for (const LayerWeights& L : w.layers) {
    for (const Tensor* t : {&L.attn_norm, &L.mlp_norm, &L.q_norm, &L.k_norm}) plan_tensor(plan, *t, DType::F32, "norm");
    for (const Tensor* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv, &L.bo, &L.w_gate, &L.w_up, &L.w_down})
      plan_tensor(plan, *t, DType::BF16, "matrix");
  }
  GpuWeights g;
  g.arena = allocate_planned(plan, "model weights");
  size_t per_token = 0;
  g.embed = put<bf16>(g.arena, w.embed, nullptr);
  per_token += size_t(cfg.hidden_size) * 2;  // one embedding row per token
  g.final_norm = put<float>(g.arena, w.final_norm, &per_token);
  if (cfg.tie_word_embeddings || w.lm_head.data == w.embed.data) {
    g.lm_head = g.embed;
    per_token += size_t(cfg.vocab_size) * size_t(cfg.hidden_size) * 2;
  } else {
    g.lm_head = put<bf16>(g.arena, w.lm_head, &per_token);
  }
  for (const LayerWeights& L : w.layers) {
    GpuLayer d;
    d.attn_norm = put<float>(g.arena, L.attn_norm, &per_token);
    d.mlp_norm = put<float>(g.arena, L.mlp_norm, &per_token);
    d.q_norm = put<float>(g.arena, L.q_norm, &per_token);
    d.k_norm = put<float>(g.arena, L.k_norm, &per_token);
    d.wq = put<bf16>(g.arena, L.wq, &per_token);
    d.wk = put<bf16>(g.arena, L.wk, &per_token);
    d.wv = put<bf16>(g.arena, L.wv, &per_token);
    d.wo = put<bf16>(g.arena, L.wo, &per_token);
    d.bq = put<bf16>(g.arena, L.bq, &per_token);
    d.bk = put<bf16>(g.arena, L.bk, &per_token);
    d.bv = put<bf16>(g.arena, L.bv, &per_token);
    d.bo = put<bf16>(g.arena, L.bo, &per_token);
    d.w_gate = put<bf16>(g.arena, L.w_gate, &per_token);
    d.w_up = put<bf16>(g.arena, L.w_up, &per_token);
    d.w_down = put<bf16>(g.arena, L.w_down, &per_token);
    // The arena places tensors back to back (256-byte aligned): stacked when the sizes allow.
    const int64_t H = cfg.hidden_size, qd = cfg.num_heads * cfg.head_dim, kvd = cfg.num_kv_heads * cfg.head_dim;
    d.qkv_stacked = d.wk == d.wq + qd * H && d.wv == d.wk + kvd * H &&
                    (!d.bq || (d.bk == d.bq + qd && d.bv == d.bk + kvd));
    d.gate_up_stacked = d.w_up == d.w_gate + cfg.intermediate_size * H;
    g.layers.push_back(d);
  }
  g.bytes = g.arena.used();
  g.bytes_per_token = per_token;
  return g;
}

GpuLora upload_lora(const ModelConfig& cfg, const LoraAdapter& a, int64_t max_tokens) {
  MemoryPlan plan;
  for (const auto& layer : a.layers)
    for (const LoraModule& m : layer)
      if (m.defined()) {
        plan.add("lora A", DType::BF16, m.A.shape);
        plan.add("lora B", DType::BF16, m.B.shape);
      }
  GpuLora g;
  g.r = a.spec.r;
  g.scale = a.spec.scale();
  plan.add("lora x A^T", DType::BF16, {max_tokens, int64_t(g.r)});
  g.arena = allocate_planned(plan, "LoRA adapter");
  BRISK_CHECK(int64_t(a.layers.size()) == cfg.num_layers, "LoRA adapter has ", a.layers.size(),
              " layers, the model ", cfg.num_layers);
  for (const auto& layer : a.layers) {
    std::array<GpuLoraModule, kNumProj> d{};
    for (int p = 0; p < kNumProj; ++p) {
      const LoraModule& m = layer[size_t(p)];
      if (!m.defined()) continue;
      BRISK_CHECK(m.A.dim(0) == g.r && m.B.dim(1) == g.r, "LoRA module of rank ", m.A.dim(0), " in an adapter of rank ",
                  g.r);
      d[size_t(p)].A = put<bf16>(g.arena, m.A, nullptr);
      d[size_t(p)].B = put<bf16>(g.arena, m.B, nullptr);
    }
    g.layers.push_back(d);
  }
  g.u = static_cast<bf16*>(g.arena.alloc(size_t(max_tokens) * size_t(g.r) * 2));
  return g;
}

}  // namespace brisk::infer
