// Model-level invariants on tiny random models: deterministic init, KV-cache decoding equal to
// full recomputation, batched sequences equal to separate runs, clear errors on bad folders.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "io/safetensors.h"
#include "model/init_model.h"
#include "model/model.h"

namespace brisk {
namespace {

InitModelOptions tiny(const std::string& arch, uint64_t seed = 1) {
  InitModelOptions o;
  o.arch = arch;
  o.preset = "tiny";
  o.seed = seed;
  return o;
}

double max_rel_diff(const float* a, const float* b, int64_t n) {
  double e = 0, m = 0;
  for (int64_t i = 0; i < n; ++i) {
    e = std::max(e, std::fabs(double(a[i]) - double(b[i])));
    m = std::max(m, std::fabs(double(b[i])));
  }
  return e / m;
}

TEST(InitModel, SameSeedSameBytesOtherSeedOtherBytes) {
  testing::TempDir t;
  init_model(t.path + "/a", tiny("qwen3", 5));
  init_model(t.path + "/b", tiny("qwen3", 5));
  init_model(t.path + "/c", tiny("qwen3", 6));
  std::string a = read_file(t.path + "/a/model.safetensors");
  EXPECT_EQ(a, read_file(t.path + "/b/model.safetensors"));
  EXPECT_NE(a, read_file(t.path + "/c/model.safetensors"));
  EXPECT_EQ(read_file(t.path + "/a/config.json"), read_file(t.path + "/b/config.json"));
}

TEST(InitModel, RefusesToOverwriteAModel) {
  testing::TempDir t;
  init_model(t.path + "/m", tiny("llama"));
  EXPECT_THROW(init_model(t.path + "/m", tiny("llama")), Error);
}

TEST(InitModel, RejectsUnknownArchAndPreset) {
  testing::TempDir t;
  InitModelOptions o = tiny("gemma2");
  try {
    init_model(t.path + "/m", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gemma2"), std::string::npos) << e.what();
  }
  o = tiny("llama");
  o.preset = "huge";
  EXPECT_THROW(init_model(t.path + "/m2", o), Error);
}

// Decoding token by token through the KV cache must give the logits of a full forward pass.
class IncrementalDecode : public ::testing::TestWithParam<std::string> {};

TEST_P(IncrementalDecode, EqualsFullRecompute) {
  testing::TempDir t;
  InitModelOptions o = tiny(GetParam(), 3);
  if (GetParam() == "mistral") o.sliding_window = 4;  // window smaller than the sequence
  init_model(t.path + "/m", o);
  auto model = Model::load(t.path + "/m");
  const int64_t V = model->config().vocab_size;
  std::vector<int32_t> ids = {5, 17, 300, 2, 999, 31000, 7, 8, 12, 13};

  KVCache full_cache(model->config(), 1, 16);
  Tensor full = model->forward({SeqChunk{0, ids, true}}, full_cache);
  std::vector<float> want(full.f32(), full.f32() + full.numel());

  KVCache cache(model->config(), 1, 16);
  std::vector<int32_t> head(ids.begin(), ids.begin() + 3);
  Tensor l = model->forward({SeqChunk{0, head, true}}, cache);
  double err = max_rel_diff(l.f32(), want.data(), 3 * V);
  for (size_t i = 3; i < ids.size(); ++i) {
    l = model->forward({SeqChunk{0, {ids[i]}, false}}, cache);
    err = std::max(err, max_rel_diff(l.f32(), want.data() + int64_t(i) * V, V));
  }
  std::printf("[incremental] %s: max rel diff %.3g\n", GetParam().c_str(), err);
  EXPECT_LT(err, 1e-5);
  EXPECT_EQ(cache.length(0), int64_t(ids.size()));
}

INSTANTIATE_TEST_SUITE_P(Archs, IncrementalDecode, ::testing::Values("llama", "mistral", "qwen2", "qwen3"));

TEST(Model, BatchOfSequencesEqualsSeparateRuns) {
  testing::TempDir t;
  init_model(t.path + "/m", tiny("qwen2", 9));
  auto model = Model::load(t.path + "/m");
  const int64_t V = model->config().vocab_size;
  std::vector<int32_t> a = {1, 2, 3, 4, 5}, b = {900, 800};
  KVCache c1(model->config(), 1, 8), c2(model->config(), 1, 8), cb(model->config(), 2, 8);
  Tensor la = model->forward({SeqChunk{0, a, false}}, c1);
  std::vector<float> wa(la.f32(), la.f32() + V);
  Tensor lb = model->forward({SeqChunk{0, b, false}}, c2);
  std::vector<float> wb(lb.f32(), lb.f32() + V);
  Tensor both = model->forward({SeqChunk{1, a, false}, SeqChunk{0, b, false}}, cb);
  ASSERT_EQ(both.dim(0), 2);
  EXPECT_LT(max_rel_diff(both.f32(), wa.data(), V), 1e-5);
  EXPECT_LT(max_rel_diff(both.f32() + V, wb.data(), V), 1e-5);
}

TEST(Model, ContextOverflowIsAnError) {
  testing::TempDir t;
  init_model(t.path + "/m", tiny("llama"));
  auto model = Model::load(t.path + "/m");
  KVCache c(model->config(), 1, 4);
  EXPECT_THROW(model->forward({SeqChunk{0, {1, 2, 3, 4, 5}, false}}, c), Error);
}

TEST(Model, TokenIdOutOfRangeIsAnError) {
  testing::TempDir t;
  init_model(t.path + "/m", tiny("llama"));
  auto model = Model::load(t.path + "/m");
  KVCache c(model->config(), 1, 4);
  EXPECT_THROW(model->forward({SeqChunk{0, {int32_t(model->config().vocab_size)}, false}}, c), Error);
}

// Rewrites model.safetensors with one tensor dropped, renamed or reshaped.
void rewrite(const std::string& dir, const std::string& victim, const std::string& mode) {
  io::SafeTensorsFile f = io::SafeTensorsFile::open(dir + "/model.safetensors");
  std::vector<HostTensor> keep;
  io::NamedTensors out;
  for (const std::string& n : f.names()) {
    const io::TensorInfo& info = f.info(n);
    HostTensor h(info.dtype, Shape::of(info.shape));
    f.read_bytes(n, h.t.data);
    std::string name = n;
    if (n == victim && mode == "drop") continue;
    if (n == victim && mode == "rename") name = "model.layers.0.mystery.weight";
    if (n == victim && mode == "reshape") h.t = h.t.reshape({h.t.numel()});
    keep.push_back(std::move(h));
    out.push_back({name, keep.back().t});
  }
  io::write_safetensors(dir + "/model.safetensors", out);
}

TEST(Model, BadWeightFilesGiveClearErrors) {
  const std::string victim = "model.layers.1.self_attn.k_proj.weight";
  for (std::string mode : {"drop", "rename", "reshape"}) {
    testing::TempDir t;
    init_model(t.path + "/m", tiny("llama"));
    rewrite(t.path + "/m", victim, mode);
    try {
      Model::load(t.path + "/m");
      FAIL() << mode;
    } catch (const Error& e) {
      std::string msg = e.what();
      std::printf("[bad weights] %s: %s\n", mode.c_str(), msg.c_str());
      EXPECT_NE(msg.find(mode == "rename" ? "k_proj" : victim), std::string::npos) << msg;
    }
  }
}

}  // namespace
}  // namespace brisk
