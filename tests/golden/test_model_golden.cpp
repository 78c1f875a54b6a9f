// The CPU engine against transformers (float32, CPU, eager attention) on tiny models from
// `brisk init-model` for every architecture feature: GQA, llama3/linear/yarn RoPE scaling,
// sliding window, qwen2 biases, qwen3 q/k norms and explicit head_dim, tied and untied
// embeddings. References: tests/golden/data/model_refs.json (make_model_refs.py).
//
// Metric, per prompt: max |brisk - hf| / max |hf| over every position and every recorded
// vocabulary column; must be <= 1e-4. Greedy continuations (32 tokens, KV-cache decoding
// here vs full recomputation there) must be identical, and so must every position's argmax.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "golden_util.h"
#include "infer/generate.h"
#include "model/init_model.h"
#include "model/model.h"

namespace brisk {
namespace {

using nlohmann::json;

json load_json(const std::string& rel) { return testing::load_golden_json(rel, "make_model_refs.py"); }

InitModelOptions parse_init(const json& args, const std::string& tok_dir) {
  return testing::parse_init_args(args, tok_dir);
}

class ModelGolden : public ::testing::TestWithParam<int> {};

TEST_P(ModelGolden, MatchesTransformers) {
  json spec = load_json("tests/golden/model_cases.json");
  json refs = load_json("tests/golden/data/model_refs.json");
  const json& c = spec["cases"][size_t(GetParam())];
  const json& ref = refs["cases"][size_t(GetParam())];
  ASSERT_EQ(c["name"], ref["name"]);
  testing::TempDir tmp;
  std::string dir = tmp.path + "/model";
  init_model(dir, parse_init(c["init"], testing::tokenizer_dir(c["tokenizer"])));
  auto model = Model::load(dir);
  const int64_t V = model->config().vocab_size;

  for (const json& p : ref["prompts"]) {
    std::vector<int32_t> ids = p["ids"].get<std::vector<int32_t>>();
    KVCache cache(model->config(), 1, int64_t(ids.size()));
    Tensor logits = model->forward({SeqChunk{0, ids, true}}, cache);
    ASSERT_EQ(logits.dim(0), int64_t(ids.size()));
    double max_err = 0, max_ref = 0;
    std::vector<int64_t> cols = p["columns"].get<std::vector<int64_t>>();
    for (size_t t = 0; t < ids.size(); ++t) {
      const float* row = logits.f32() + int64_t(t) * V;
      for (size_t j = 0; j < cols.size(); ++j) {
        double want = p["logits"][t][j].get<double>();
        max_err = std::max(max_err, std::fabs(double(row[cols[j]]) - want));
        max_ref = std::max(max_ref, std::fabs(want));
      }
      int64_t am = std::max_element(row, row + V) - row;
      EXPECT_EQ(am, p["argmax"][t].get<int64_t>()) << c["name"] << " position " << t;
    }
    double rel = max_err / max_ref;
    std::printf("[golden] %-32s prompt %2zu tokens: max rel err %.3g (max |logit| %.3g)\n",
                c["name"].get<std::string>().c_str(), ids.size(), rel, max_ref);
    EXPECT_LE(rel, 1e-4) << c["name"];

    infer::GenerateOptions opt;
    opt.sampling.temperature = 0;
    opt.max_tokens = spec["greedy_tokens"].get<int64_t>();
    infer::GenerateResult r = infer::generate(*model, nullptr, ids, opt);
    EXPECT_EQ(r.ids, p["greedy"].get<std::vector<int32_t>>()) << c["name"] << ": greedy continuation differs";
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ModelGolden, ::testing::Range(0, 7));

}  // namespace
}  // namespace brisk

namespace brisk {
namespace {
TEST(ModelGoldenSpec, EveryCaseIsInstantiated) {
  json spec = load_json("tests/golden/model_cases.json");
  EXPECT_EQ(spec["cases"].size(), 7u) << "update the Range() in INSTANTIATE_TEST_SUITE_P";
}
}  // namespace
}  // namespace brisk
