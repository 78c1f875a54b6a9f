// The GPU training memory plan (model/train_memory.h): parts add up, activations follow the
// recompute policy and the token count, and the layout the CUDA trainer allocates from is the
// plan (same bytes, no overlapping tensors).
#include <gtest/gtest.h>

#include <algorithm>

#include "model/init_model.h"
#include "model/train_memory.h"
#include "model/weights.h"

namespace brisk {
namespace {

ModelConfig llama8b() {
  InitModelOptions o;
  o.preset = "8b";
  o.vocab_size = 128256;
  return preset_config(o);
}

TrainShape lora_shape(int64_t tokens, Recompute rc) {
  TrainShape s;
  s.tokens = tokens;
  s.recompute = rc;
  s.lora_r = 16;
  s.lora_targets.fill(true);
  return s;
}

size_t part(const TrainMemoryPlan& p, const std::string& name) {
  for (auto& x : p.parts)
    if (x.name == name) return x.bytes;
  ADD_FAILURE() << "no part " << name;
  return 0;
}

TEST(TrainMemory, EightBillionLoraBreakdown) {
  ModelConfig c = llama8b();
  TrainMemoryPlan none = plan_train_memory(c, lora_shape(4096, Recompute::None));
  TrainMemoryPlan sel = plan_train_memory(c, lora_shape(4096, Recompute::Selective));
  TrainMemoryPlan full = plan_train_memory(c, lora_shape(4096, Recompute::Full));
  std::printf("%s", sel.table().c_str());
  // bf16 weights of Llama-3.1-8B: 8.03e9 parameters -> 14.96 GiB (plus alignment slack).
  double w = double(part(none, "weights")) / double(1ull << 30);
  EXPECT_NEAR(w, 8.03e9 * 2 / double(1ull << 30), 0.05);
  // LoRA r16 on all seven projections: 41.9M parameters, f32 master + bf16 copy (6 bytes).
  EXPECT_NEAR(double(part(none, "lora")), 41943040.0 * 6, 1e6);
  EXPECT_NEAR(double(part(none, "optimizer")), 41943040.0 * 8, 1e6);
  // Less is stored with more recomputation.
  EXPECT_GT(part(none, "activations"), part(sel, "activations"));
  EXPECT_GT(part(sel, "activations"), part(full, "activations"));
  size_t sum = 0;
  for (auto& p : sel.parts) sum += p.bytes;
  EXPECT_EQ(sum, sel.total());
  // Activations scale with the tokens.
  TrainMemoryPlan half = plan_train_memory(c, lora_shape(2048, Recompute::Selective));
  EXPECT_LT(part(half, "activations"), part(sel, "activations") * 6 / 10);
}

TEST(TrainMemory, LayoutIsThePlan) {
  InitModelOptions o;
  o.arch = "qwen3";
  o.preset = "tiny";
  o.vocab_size = 1000;
  ModelConfig c = preset_config(o);
  for (Recompute rc : {Recompute::None, Recompute::Selective, Recompute::Full}) {
    TrainShape s = lora_shape(300, rc);
    s.lora_dropout = true;
    MemoryPlan plan;
    layout_gpu_activations(c, s, &plan, nullptr);
    Arena arena(plan.total());
    size_t calls = 0;
    GpuActivations g = layout_gpu_activations(c, s, nullptr, [&](size_t n) {
      ++calls;
      return arena.alloc(n);
    });
    EXPECT_EQ(arena.used(), plan.total()) << int(rc);
    EXPECT_GT(calls, 20u);
    // Per-layer inputs are distinct buffers; with recompute the layers share the rest.
    EXPECT_NE(g.layers[0].x_in.data, g.layers[1].x_in.data);
    if (rc == Recompute::None) EXPECT_NE(g.layers[0].gate.data, g.layers[1].gate.data);
    else EXPECT_EQ(g.layers[0].gate.data, g.layers[1].gate.data);
    if (rc == Recompute::Full) EXPECT_EQ(g.layers[0].attn.data, g.layers[1].attn.data);
    else EXPECT_NE(g.layers[0].attn.data, g.layers[1].attn.data);
  }
}

// Full fine-tuning on the GPU: bf16 working weights plus four f32 arenas (master, gradient, m,
// v) of full_param_layout, i.e. 2 + 16 bytes per parameter, and no LoRA activations.
TEST(TrainMemory, FullFineTuningCountsEveryWeightFourTimesInF32) {
  for (const char* arch : {"qwen2", "qwen3", "llama"}) {
    InitModelOptions o;
    o.arch = arch;
    o.preset = "tiny";
    o.vocab_size = 1000;
    ModelConfig c = preset_config(o);
    TrainShape s;
    s.tokens = 300;
    s.recompute = Recompute::Selective;
    s.lora = false;
    TrainMemoryPlan p = plan_train_memory(c, s);
    std::printf("%s full fine-tuning:\n%s", arch, p.table().c_str());
    const int64_t n = parameter_count(c);
    // The layout holds every weight_specs tensor once, each at a 64-float boundary, no overlap.
    ModelWeights shapes;
    shapes.layers.resize(size_t(c.num_layers));
    auto specs = weight_specs(c, shapes);
    FullParamLayout layout = full_param_layout(c);
    ASSERT_EQ(layout.offsets.size(), specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      EXPECT_EQ(layout.offsets[i] % 64, 0u) << specs[i].name;
      const size_t end = layout.offsets[i] + size_t(specs[i].shape.numel());
      EXPECT_LE(end, i + 1 < specs.size() ? layout.offsets[i + 1] : layout.floats) << specs[i].name;
    }
    EXPECT_GE(layout.floats, size_t(n));
    EXPECT_LT(layout.floats, size_t(n) + 64 * specs.size());
    const size_t arena = layout.floats * 4 + kArenaAlign;
    EXPECT_EQ(full_param_arena_bytes(c), arena);
    EXPECT_EQ(part(p, "master"), arena) << arch;
    EXPECT_EQ(part(p, "gradients"), arena) << arch;
    EXPECT_EQ(part(p, "optimizer"), 2 * arena) << arch;
    // bf16 working weights (+ f32 norm weights and alignment): about 2 bytes per parameter.
    EXPECT_GE(part(p, "weights"), size_t(2 * n)) << arch;
    EXPECT_LT(part(p, "weights"), size_t(2 * n) + size_t(c.num_layers * 16 + 4) * kArenaAlign + size_t(4 * n / 10))
        << arch;
    // No LoRA buffers among the activations; the norm-gradient scratch is there.
    MemoryPlan lp;
    layout_gpu_activations(c, s, &lp, nullptr);
    Arena acts(lp.total());
    GpuActivations g = layout_gpu_activations(c, s, nullptr, [&](size_t b) { return acts.alloc(b); });
    EXPECT_TRUE(g.layers[0].x_in.defined() && g.dres.defined());
    EXPECT_FALSE(g.du.defined());
    EXPECT_FALSE(g.layers[0].u[0].defined());
    EXPECT_TRUE(g.norm_scratch.defined());
    EXPECT_EQ(part(p, "activations"), lp.total());
    size_t sum = 0;
    for (auto& x : p.parts) sum += x.bytes;
    EXPECT_EQ(sum, p.total());
  }
  // Llama-3.1-8B: 8.03e9 parameters x 16 bytes = 119.7 GiB of f32 state beside 15 GiB of weights.
  TrainShape s;
  s.tokens = 4096;
  s.recompute = Recompute::Full;
  s.lora = false;
  TrainMemoryPlan p = plan_train_memory(llama8b(), s);
  const double gib = double(1ull << 30);
  EXPECT_NEAR(double(part(p, "master") + part(p, "gradients") + part(p, "optimizer")) / gib, 8.03e9 * 16 / gib, 0.3);
  EXPECT_NEAR(double(part(p, "weights")) / gib, 8.03e9 * 2 / gib, 0.05);
}

}  // namespace
}  // namespace brisk
