#include "model/train_memory.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "model/weights.h"

namespace brisk {

int64_t cross_entropy_chunk_rows(const ModelConfig& c, int64_t tokens) {
  // ~128 MiB of bf16 logits per chunk, at least 64 rows.
  int64_t rows = std::max<int64_t>(64, (int64_t(128) << 20) / (2 * std::max<int64_t>(c.vocab_size, 1)));
  return std::max<int64_t>(1, std::min(tokens, rows));
}

size_t attention_scratch_bytes(const ModelConfig& c, int64_t tokens) {
  // dq accumulated in f32, D = rowsum(dout * out) in f32, and tile tables.
  return size_t(tokens) * size_t(c.num_heads) * (size_t(c.head_dim) + 1) * sizeof(float) + (size_t(1) << 20);
}

GpuActivations layout_gpu_activations(const ModelConfig& c, const TrainShape& s, MemoryPlan* plan,
                                      const std::function<void*(size_t)>& alloc) {
  const int64_t T = s.tokens, H = c.hidden_size, I = c.intermediate_size, L = c.num_layers;
  const int64_t qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim, r = std::max(s.lora_r, 1);
  const int64_t max_in = std::max({H, I, qd});
  auto take = [&](const char* name, DType dt, Shape shape) {
    size_t bytes = tensor_bytes(dt, shape);
    if (plan) plan->add(name, dt, shape);
    return Tensor(alloc ? alloc(bytes) : nullptr, dt, shape, Device::CUDA);
  };
  auto bf = [&](const char* name, int64_t rows, int64_t cols) { return take(name, DType::BF16, {rows, cols}); };

  // One layer's full set of tensors (everything but x_in).
  auto full_set = [&](GpuLayerActs& a, bool with_attn) {
    a.xn = bf("xn", T, H);
    if (c.qk_norm) {
      a.q_raw = bf("q_raw", T, qd);
      a.k_raw = bf("k_raw", T, kvd);
    }
    a.q = bf("q", T, qd);
    a.k = bf("k", T, kvd);
    a.v = bf("v", T, kvd);
    if (with_attn) {
      a.attn = bf("attn", T, qd);
      a.lse = take("lse", DType::F32, {T, c.num_heads});
    }
    a.x_mid = bf("x_mid", T, H);
    a.xn2 = bf("xn2", T, H);
    a.gate = bf("gate", T, I);
    a.up = bf("up", T, I);
    a.h = bf("h", T, I);
    if (s.lora)
      for (int j = 0; j < kNumProj; ++j)
        if (s.lora_targets[size_t(j)]) a.u[size_t(j)] = bf("lora_u", T, r);
    if (!c.qk_norm) {
      a.q_raw = a.q;
      a.k_raw = a.k;
    }
  };

  GpuActivations g;
  g.layers.resize(size_t(L));
  for (auto& a : g.layers) a.x_in = bf("x_in", T, H);
  g.x_final = bf("x_final", T, H);
  if (s.recompute == Recompute::None) {
    for (auto& a : g.layers) full_set(a, true);
  } else {
    GpuLayerActs shared;
    full_set(shared, s.recompute == Recompute::Full);
    for (auto& a : g.layers) {
      Tensor x = a.x_in;
      a = shared;
      a.x_in = x;
      if (s.recompute == Recompute::Selective) {
        a.attn = bf("attn", T, qd);
        a.lse = take("lse", DType::F32, {T, c.num_heads});
      }
    }
  }
  // Backward scratch, shared by every layer.
  g.xf = bf("xf", T, H);
  g.dres = bf("dres", T, H);
  g.dmid = bf("dmid", T, H);
  g.dxn = bf("dxn", T, H);
  g.dq = bf("dq", T, qd);
  g.dq_raw = c.qk_norm ? bf("dq_raw", T, qd) : g.dq;
  g.dattn = bf("dattn", T, qd);
  g.dk = bf("dk", T, kvd);
  g.dk_raw = c.qk_norm ? bf("dk_raw", T, kvd) : g.dk;
  g.dv = bf("dv", T, kvd);
  g.dgate = bf("dgate", T, I);
  g.dup = bf("dup", T, I);
  g.dh = bf("dh", T, I);
  g.du = s.lora ? bf("du", T, r) : Tensor();
  g.xd = s.lora_dropout ? bf("dropout_x", T, max_in) : Tensor();
  g.tmp = s.lora_dropout ? bf("dropout_tmp", T, max_in) : Tensor();
  g.logits = bf("logits", cross_entropy_chunk_rows(c, T), c.vocab_size);
  g.row_loss = take("row_loss", DType::F32, {T});
  g.ids = take("ids", DType::I32, {T});
  g.targets = take("targets", DType::I32, {T});
  g.positions = take("positions", DType::I32, {T});
  g.cu_seqlens = take("cu_seqlens", DType::I32, {T + 1});
  g.partial = take("partial", DType::F32, {1024});
  g.attn_scratch = take("attn_scratch", DType::U8, {int64_t(attention_scratch_bytes(c, T))});
  if (!s.lora) g.norm_scratch = take("norm_scratch", DType::F32, {1024 * std::max(H, c.head_dim)});
  return g;
}

FullParamLayout full_param_layout(const ModelConfig& c) {
  ModelWeights shapes;
  shapes.layers.resize(size_t(c.num_layers));
  FullParamLayout out;
  for (const WeightSpec& s : weight_specs(c, shapes)) {
    out.offsets.push_back(out.floats);
    out.floats += (size_t(s.shape.numel()) + 63) / 64 * 64;
  }
  return out;
}

size_t full_param_arena_bytes(const ModelConfig& c) {
  return full_param_layout(c).floats * sizeof(float) + kArenaAlign;
}

size_t TrainMemoryPlan::total() const {
  size_t t = 0;
  for (const Part& p : parts) t += p.bytes;
  return t;
}

std::string TrainMemoryPlan::table() const {
  std::string out;
  char buf[256];
  for (const Part& p : parts) {
    std::snprintf(buf, sizeof buf, "  %-12s %10.2f GiB  %s\n", p.name.c_str(), double(p.bytes) / double(1ull << 30),
                  p.detail.c_str());
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "  %-12s %10.2f GiB\n", "total", double(total()) / double(1ull << 30));
  return out + buf;
}

TrainMemoryPlan plan_train_memory(const ModelConfig& c, const TrainShape& s) {
  BRISK_CHECK(s.tokens > 0, "training shape has no tokens");
  TrainMemoryPlan p;
  const int64_t H = c.hidden_size, V = c.vocab_size;
  // Weights: bf16 matrices and embeddings, f32 norm weights; biases bf16.
  int64_t mats = 0, norms = 0, biases = 0;
  for (int j = 0; j < kNumProj; ++j) mats += proj_in(c, Proj(j)) * proj_out(c, Proj(j));
  mats *= c.num_layers;
  norms = c.num_layers * (2 * H + (c.qk_norm ? 2 * c.head_dim : 0)) + H;
  if (c.attention_bias) biases = c.num_layers * (proj_out(c, Proj::Q) + 2 * proj_out(c, Proj::K));
  int64_t embed = V * H * (c.tie_word_embeddings ? 1 : 2);
  // Allocated as one arena with every tensor aligned: count the alignment like the arena does.
  MemoryPlan w;
  w.add("matrices", DType::BF16, {mats + embed + biases});
  w.add("norms", DType::F32, {norms});
  size_t weight_bytes = size_t(2 * (mats + embed + biases) + 4 * norms) +
                        size_t(c.num_layers * 16 + 4) * kArenaAlign;  // per-tensor alignment slack
  p.parts.push_back({"weights", weight_bytes, cat(mats + embed, " bf16 parameters")});
  if (s.lora) {
    int64_t trainable = 0, n_tensors = 0;
    for (int j = 0; j < kNumProj; ++j)
      if (s.lora_targets[size_t(j)]) {
        trainable += int64_t(s.lora_r) * (proj_in(c, Proj(j)) + proj_out(c, Proj(j)));
        n_tensors += 2;
      }
    trainable *= c.num_layers;
    n_tensors *= c.num_layers;
    size_t slack = size_t(n_tensors) * kArenaAlign;
    size_t f32 = size_t(trainable) * 4 + slack;
    p.parts.push_back(
        {"lora", f32 + size_t(trainable) * 2 + slack, cat(trainable, " parameters: f32 master + bf16 copy")});
    p.parts.push_back({"gradients", f32, "f32"});
    p.parts.push_back({"optimizer", 2 * f32, "AdamW m, v (f32)"});
  } else {
    // Full fine-tuning: four f32 arenas of full_param_layout (16 bytes per parameter) beside the
    // bf16 working weights above, exactly as the CUDA trainer allocates them.
    const size_t arena = full_param_arena_bytes(c);
    p.parts.push_back({"master", arena, cat(parameter_count(c), " f32 master weights")});
    p.parts.push_back({"gradients", arena, "f32"});
    p.parts.push_back({"optimizer", 2 * arena, "AdamW m, v (f32)"});
  }
  MemoryPlan acts;
  layout_gpu_activations(c, s, &acts, nullptr);
  const char* rc = s.recompute == Recompute::None ? "none" : s.recompute == Recompute::Selective ? "selective" : "full";
  p.parts.push_back({"activations", acts.total(), cat(s.tokens, " tokens, recompute ", rc)});
  p.parts.push_back({"workspace", kGemmWorkspaceBytes, "cuBLASLt"});
  return p;
}

}  // namespace brisk
