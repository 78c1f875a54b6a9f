// Export: merged folders equal base + adapter; GGUF files brisk writes run in brisk with logits
// close to the safetensors model (tolerance per type, stated below), greedy continuations equal
// for f32/f16; GGUF LoRA files hold what llama.cpp expects; bad requests fail cleanly.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/test_util.h"
#include "export/gguf_export.h"
#include "export/merge.h"
#include "infer/generate.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "model/gguf_model.h"
#include "model/init_model.h"
#include "model/model.h"

namespace brisk {
namespace {

struct Fixture {
  testing::TempDir t;
  std::string base, adapter;
  Fixture(const std::string& arch, const std::string& tok, const std::string& preset = "tiny") {
    base = t.path + "/base";
    adapter = t.path + "/adapter";
    InitModelOptions o;
    o.arch = arch;
    o.preset = preset;
    o.seed = 9;
    o.tokenizer_dir = testing::tokenizer_dir(tok);
    if (arch == "mistral") o.sliding_window = 0;  // llama.cpp's llama arch has no sliding window
    init_model(base, o);
    ModelConfig c = io::load_model_config(base);
    LoraSpec s;
    s.r = 4;
    s.alpha = 8;
    s.targets.fill(true);
    save_peft_adapter(init_lora(c, s, 3, /*random_b=*/true), c, adapter, base);
  }
};

std::vector<float> logits_of(Model& m, const std::vector<int32_t>& ids) {
  KVCache c(m.config(), 1, int64_t(ids.size()));
  Tensor l = m.forward({SeqChunk{0, ids, true}}, c);
  return std::vector<float>(l.f32(), l.f32() + l.numel());
}

double rel(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0, m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    e = std::max(e, std::fabs(double(a[i]) - b[i]));
    m = std::max(m, std::fabs(double(b[i])));
  }
  return e / m;
}

const std::vector<int32_t> kIds = {5, 900, 31, 77, 12000, 4, 8, 15, 16, 23, 42, 108};

TEST(ExportMerged, MergedLogitsEqualBasePlusAdapter) {
  Fixture fx("qwen3", "qwen3");
  auto m = Model::load(fx.base);
  LoraAdapter ad = load_peft_adapter(fx.adapter, m->config());
  m->set_adapter(&ad);
  auto want = logits_of(*m, kIds);
  for (std::string dt : {"f32", "bf16"}) {
    exporter::MergedExportOptions o;
    o.base_dir = fx.base;
    o.adapter_dir = fx.adapter;
    o.out_dir = fx.t.path + "/merged-" + dt;
    o.dtype = dt;
    o.shard_bytes = 4 << 20;  // force several shards
    o.progress = false;
    exporter::export_merged(o);
    EXPECT_TRUE(file_exists(o.out_dir + "/model.safetensors.index.json"));
    EXPECT_TRUE(file_exists(o.out_dir + "/tokenizer.json"));
    auto merged = Model::load(o.out_dir);
    double e = rel(logits_of(*merged, kIds), want);
    std::printf("[merged %s] max rel err vs base+adapter %.3g\n", dt.c_str(), e);
    EXPECT_LE(e, dt == "f32" ? 1e-5 : 2e-2);
    EXPECT_THROW(exporter::export_merged(o), Error) << "existing output without --force";
  }
}

// Per-type bounds on max |gguf - safetensors| / max |safetensors| over all logits of a
// 12-token prompt on the tiny model (measured values are printed; bounds leave ~2x margin).
struct QuantCase {
  const char* quant;
  double bound;
};

TEST(ExportGGUF, BriskRunsItsOwnGGUFFiles) {
  for (auto [arch, tok] : {std::pair{"llama", "llama3"}, {"qwen2", "qwen3"}, {"qwen3", "qwen3"}, {"mistral", "llama2"}}) {
    Fixture fx(arch, tok);
    auto ref_model = Model::load(fx.base);
    auto want = logits_of(*ref_model, kIds);
    infer::GenerateOptions go;
    go.sampling.temperature = 0;
    go.max_tokens = 16;
    auto want_greedy = infer::generate(*ref_model, nullptr, kIds, go).ids;
    for (QuantCase q : {QuantCase{"f32", 1e-5}, {"f16", 5e-3}, {"bf16", 3e-2}, {"q8_0", 2e-2}, {"q6_k", 6e-2},
                        {"q5_k_m", 1.2e-1}, {"q4_k_m", 2e-1}, {"q4_0", 3e-1}}) {
      exporter::GGUFExportOptions o;
      o.model_dir = fx.base;
      o.out_path = fx.t.path + "/m-" + q.quant + ".gguf";
      o.quant = q.quant;
      o.progress = false;
      exporter::export_gguf(o);
      auto m = Model::load(o.out_path);
      double e = rel(logits_of(*m, kIds), want);
      std::printf("[gguf %s %s] max rel err vs safetensors %.3g (bound %.3g)\n", arch, q.quant, e, q.bound);
      EXPECT_LE(e, q.bound) << arch << " " << q.quant;
      if (std::string(q.quant) == "f32" || std::string(q.quant) == "f16")
        EXPECT_EQ(infer::generate(*m, nullptr, kIds, go).ids, want_greedy) << arch << " " << q.quant;
    }
  }
}

TEST(ExportGGUF, MergingAnAdapterAtExportEqualsTheAdapterAtRuntime) {
  Fixture fx("llama", "llama3");
  auto m = Model::load(fx.base);
  LoraAdapter ad = load_peft_adapter(fx.adapter, m->config());
  m->set_adapter(&ad);
  auto want = logits_of(*m, kIds);
  exporter::GGUFExportOptions o;
  o.model_dir = fx.base;
  o.adapter_dir = fx.adapter;
  o.out_path = fx.t.path + "/merged.gguf";
  o.quant = "f32";
  o.progress = false;
  exporter::export_gguf(o);
  auto g = Model::load(o.out_path);
  EXPECT_LE(rel(logits_of(*g, kIds), want), 1e-5);
}

TEST(ExportGGUF, RefusesToOverwriteAndUnknownQuant) {
  Fixture fx("qwen3", "qwen3");
  exporter::GGUFExportOptions o;
  o.model_dir = fx.base;
  o.out_path = fx.t.path + "/x.gguf";
  o.progress = false;
  exporter::export_gguf(o);
  EXPECT_THROW(exporter::export_gguf(o), Error);
  o.force = true;
  EXPECT_NO_THROW(exporter::export_gguf(o));
  o.quant = "q3_k_xl";
  o.out_path = fx.t.path + "/y.gguf";
  EXPECT_THROW(exporter::export_gguf(o), Error);
  EXPECT_FALSE(file_exists(o.out_path));
}

TEST(ExportLoraGGUF, WritesAdapterTensorsWithLlamaCppShapesAndScale) {
  Fixture fx("llama", "llama3");
  exporter::LoraGGUFOptions o;
  o.adapter_dir = fx.adapter;
  o.base_dir = fx.base;
  o.out_path = fx.t.path + "/lora.gguf";
  exporter::export_lora_gguf(o);
  io::GGUFFile f = io::GGUFFile::open(o.out_path);
  EXPECT_EQ(f.get_string("general.type"), "adapter");
  EXPECT_EQ(f.get_string("adapter.type"), "lora");
  EXPECT_FLOAT_EQ(float(f.get_float("adapter.lora.alpha")), 8.0f);
  ModelConfig c = io::load_model_config(fx.base);
  const auto& a = f.tensor_info("blk.1.ffn_down.weight.lora_a");
  const auto& b = f.tensor_info("blk.1.ffn_down.weight.lora_b");
  EXPECT_EQ(a.ne, (std::vector<int64_t>{c.intermediate_size, 4}));  // ne [in, r]
  EXPECT_EQ(b.ne, (std::vector<int64_t>{4, c.hidden_size}));        // ne [r, out]
}

}  // namespace
}  // namespace brisk
