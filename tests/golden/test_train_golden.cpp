// Training against transformers + PEFT (float32, CPU): loss, every LoRA gradient, sampled
// full fine-tuning gradients, and logits through an adapter, for tiny models of every
// architecture. References: tests/golden/data/train_refs.json (+ train_<case>.safetensors),
// made by tests/golden/make_train_refs.py.
//
// Metrics: loss relative error <= 1e-5; per gradient tensor max |brisk - hf| / max |hf| <=
// 1e-4 (LoRA: whole tensors; full: the sampled entries) and the L2 norms within 1e-4
// relative; adapter logits as in the model golden test (<= 1e-4).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "golden_util.h"
#include "io/safetensors.h"
#include "model/init_model.h"
#include "model/train_model.h"

namespace brisk {
namespace {

using nlohmann::json;

json load_json(const std::string& rel) { return testing::load_golden_json(rel, "make_train_refs.py"); }

InitModelOptions parse_init(const json& args, const std::string& tok_dir) {
  return testing::parse_init_args(args, tok_dir);
}

TokenBatch make_batch(const json& rows) { return testing::golden_batch(rows); }

double rel_err(const std::vector<double>& got, const std::vector<double>& want) {
  double e = 0, m = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    e = std::max(e, std::fabs(got[i] - want[i]));
    m = std::max(m, std::fabs(want[i]));
  }
  return m == 0 ? e : e / m;
}

class TrainGolden : public ::testing::TestWithParam<int> {};

TEST_P(TrainGolden, MatchesTransformersAndPeft) {
  json spec = load_json("tests/golden/train_cases.json");
  json refs = load_json("tests/golden/data/train_refs.json");
  const json& c = spec["cases"][size_t(GetParam())];
  const json& ref = refs["cases"][size_t(GetParam())];
  const std::string name = c["name"];
  ASSERT_EQ(name, ref["name"].get<std::string>());
  testing::TempDir tmp;
  init_model(tmp.path + "/m", parse_init(c["init"], testing::tokenizer_dir(c["tokenizer"])));
  auto model = Model::load(tmp.path + "/m");
  const ModelConfig& cfg = model->config();

  std::unique_ptr<LoraAdapter> lora;
  if (c["method"] == "lora") {
    LoraSpec ls;
    ls.r = c["lora"]["r"];
    ls.alpha = c["lora"]["alpha"];
    ls.rslora = c["lora"]["rslora"];
    ls.targets = parse_target_modules(c["lora"]["targets"].get<std::vector<std::string>>());
    lora = std::make_unique<LoraAdapter>(init_lora(cfg, ls, c["lora"]["seed"].get<uint64_t>(), /*random_b=*/true));
  }
  TrainModel tm(*model, lora.get(), Recompute::None);
  TokenBatch batch = make_batch(c["batch"]);
  const int64_t n = batch.label_count();
  double loss = tm.forward_backward(batch, 1.0f / float(n), 0) / double(n);
  double want_loss = ref["loss"];
  std::printf("[train golden] %-28s loss %.6f (hf %.6f)\n", name.c_str(), loss, want_loss);
  EXPECT_NEAR(loss, want_loss, 1e-5 * std::fabs(want_loss)) << name;

  double worst = 0;
  if (lora) {
    io::SafeTensorsFile f = io::SafeTensorsFile::open(testing::source_path("tests/golden/data/" + ref["lora_grads"].get<std::string>()));
    size_t matched = 0;
    for (TrainGrad& p : tm.params()) {
      ASSERT_TRUE(f.has(p.name)) << p.name;
      std::vector<float> want(size_t(p.grad.numel()));
      f.read_f32(p.name, want.data());
      std::vector<double> g(p.grad.f32(), p.grad.f32() + p.grad.numel()), w(want.begin(), want.end());
      double e = rel_err(g, w);
      worst = std::max(worst, e);
      EXPECT_LE(e, 1e-4) << name << " " << p.name;
      ++matched;
    }
    EXPECT_EQ(matched, f.names().size()) << "every PEFT gradient has a brisk counterpart";

    // Inference with the adapter (the --adapter path) equals PEFT's logits.
    model->set_adapter(lora.get());
    std::vector<int32_t> ids = c["batch"][0]["ids"].get<std::vector<int32_t>>();
    KVCache cache(cfg, 1, int64_t(ids.size()));
    Tensor logits = model->forward({SeqChunk{0, ids, true}}, cache);
    std::vector<double> got, want;
    for (size_t t = 0; t < ids.size(); ++t)
      for (size_t j = 0; j < ref["columns"].size(); ++j) {
        got.push_back(logits.f32()[int64_t(t) * cfg.vocab_size + ref["columns"][j].get<int64_t>()]);
        want.push_back(ref["logits"][t][j].get<double>());
      }
    double le = rel_err(got, want);
    std::printf("[train golden] %-28s adapter logits max rel err %.3g\n", name.c_str(), le);
    EXPECT_LE(le, 1e-4);
  } else {
    const json& grads = ref["grads"];
    std::map<std::string, TrainGrad*> ours;
    for (TrainGrad& p : tm.params()) ours[p.name] = &p;
    EXPECT_EQ(ours.size(), grads.size()) << "same trainable tensors as transformers";
    for (auto& [pname, g] : grads.items()) {
      ASSERT_TRUE(ours.count(pname)) << pname;
      const TrainGrad& p = *ours[pname];
      double norm = 0;
      for (int64_t i = 0; i < p.grad.numel(); ++i) norm += double(p.grad.f32()[i]) * p.grad.f32()[i];
      norm = std::sqrt(norm);
      EXPECT_NEAR(norm, g["norm"].get<double>(), 1e-4 * g["norm"].get<double>() + 1e-12) << pname;
      std::vector<double> got, want;
      for (size_t i = 0; i < g["index"].size(); ++i) {
        got.push_back(p.grad.f32()[g["index"][i].get<int64_t>()]);
        want.push_back(g["values"][i].get<double>());
      }
      double e = rel_err(got, want);
      worst = std::max(worst, e);
      EXPECT_LE(e, 1e-4) << name << " " << pname;
    }
  }
  std::printf("[train golden] %-28s worst gradient max rel err %.3g over %zu tensors\n", name.c_str(), worst,
              tm.params().size());
}

INSTANTIATE_TEST_SUITE_P(Cases, TrainGolden, ::testing::Range(0, 6));

TEST(TrainGoldenSpec, EveryCaseIsInstantiated) {
  EXPECT_EQ(load_json("tests/golden/train_cases.json")["cases"].size(), 6u);
}

}  // namespace
}  // namespace brisk

namespace brisk {
namespace {
// An adapter saved by PEFT's save_pretrained (not by brisk) loads through the --adapter path
// and gives PEFT's logits.
TEST(PeftSavedAdapter, LoadsAndMatchesPeftLogits) {
  json spec = load_json("tests/golden/train_cases.json");
  json refs = load_json("tests/golden/data/train_refs.json");
  ASSERT_TRUE(refs.contains("peft_saved"));
  const json& ref = refs["peft_saved"];
  const json& c = spec["cases"][0];
  ASSERT_EQ(ref["case"], c["name"]);
  testing::TempDir tmp;
  init_model(tmp.path + "/m", parse_init(c["init"], testing::tokenizer_dir(c["tokenizer"])));
  auto model = Model::load(tmp.path + "/m");
  LoraAdapter ad = load_peft_adapter(testing::source_path("tests/golden/data/peft_adapter"), model->config());
  EXPECT_EQ(ad.spec.r, 4);
  model->set_adapter(&ad);
  std::vector<int32_t> ids = ref["ids"].get<std::vector<int32_t>>();
  KVCache cache(model->config(), 1, int64_t(ids.size()));
  Tensor logits = model->forward({SeqChunk{0, ids, true}}, cache);
  std::vector<double> got, want;
  for (size_t t = 0; t < ids.size(); ++t)
    for (size_t j = 0; j < ref["columns"].size(); ++j) {
      got.push_back(logits.f32()[int64_t(t) * model->config().vocab_size + ref["columns"][j].get<int64_t>()]);
      want.push_back(ref["logits"][t][j].get<double>());
    }
  double e = rel_err(got, want);
  std::printf("[peft adapter] PEFT-saved adapter logits max rel err %.3g\n", e);
  EXPECT_LE(e, 1e-4);
}
}  // namespace
}  // namespace brisk
