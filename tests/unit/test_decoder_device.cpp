// make_decoder's device choice, on any machine: "cpu" always works, "auto" always gives a
// working decoder, "cuda" either gives a CUDA decoder (GPU machine) or one clear line saying why
// not (CPU-only build, no device, too old a GPU); an unknown device name is an error.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "infer/decoder.h"
#include "model/init_model.h"

namespace brisk::infer {
namespace {

class DecoderDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    InitModelOptions o;
    o.preset = "tiny";
    o.vocab_size = 300;
    init_model(dir.path + "/m", o);
    model = Model::load(dir.path + "/m");
  }
  testing::TempDir dir;
  std::unique_ptr<Model> model;
};

TEST_F(DecoderDevice, CudaWithoutAGpuIsOneClearLine) {
  try {
    auto d = make_decoder(*model, "cuda");
    EXPECT_EQ(d->device_name().rfind("cuda:", 0), 0u) << d->device_name();  // a GPU is here
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::printf("  --device cuda here: %s\n", msg.c_str());
    EXPECT_EQ(msg.rfind("--device cuda: ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_GT(msg.size(), std::string("--device cuda: ").size() + 5) << "no reason given";
  }
}

TEST_F(DecoderDevice, AutoAndCpuDecodeAndUnknownIsRejected) {
  for (const char* dev : {"cpu", "auto"}) {
    auto d = make_decoder(*model, dev);
    d->reserve(1, 8);
    Tensor logits = d->forward({SeqChunk{0, {1, 2, 3}, false}});
    EXPECT_EQ(logits.dim(0), 1);
    EXPECT_EQ(logits.dim(1), 300);
    EXPECT_EQ(d->length(0), 3);
  }
  EXPECT_THROW(make_decoder(*model, "gpu"), Error);
}

TEST_F(DecoderDevice, ForwardSampleDefaultMatchesForwardThenSampler) {
  auto d = make_decoder(*model, "cpu");
  d->reserve(2, 16);
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s0(p), s1(p);
  std::vector<int32_t> h0 = {1, 2, 3}, h1 = {7};
  std::vector<Sampler*> samplers{&s0, &s1};
  std::vector<const std::vector<int32_t>*> hist{&h0, &h1};
  // Slot 1 asks for every row: the sampled row must be its last.
  auto ids = d->forward_sample({SeqChunk{0, h0, false}, SeqChunk{1, {7, 8, 9}, true}}, samplers, hist);
  ASSERT_EQ(ids.size(), 2u);
  auto ref = make_decoder(*model, "cpu");
  ref->reserve(2, 16);
  Tensor l = ref->forward({SeqChunk{0, h0, false}, SeqChunk{1, {7, 8, 9}, true}});
  Sampler r(p);
  std::vector<float> row0(l.f32(), l.f32() + 300), row_last(l.f32() + 3 * 300, l.f32() + 4 * 300);
  EXPECT_EQ(ids[0], r.sample(row0.data(), 300, h0));
  EXPECT_EQ(ids[1], r.sample(row_last.data(), 300, h1));
}

}  // namespace
}  // namespace brisk::infer
