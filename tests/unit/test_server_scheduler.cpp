// The continuous-batching scheduler on a tiny random model: batched results equal one-by-one
// generation (greedy), adapters per request, stop strings, cancellation, context limits.
#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include "common/test_util.h"
#include "core/rng.h"
#include "infer/generate.h"
#include "model/init_model.h"
#include "model/lora.h"
#include "model/model.h"
#include "server/inference_service.h"
#include "text/tokenizer.h"

namespace brisk::server {
namespace {

struct Outcome {
  std::string text;
  GenerationEvent done;
  size_t pieces = 0;
};

Outcome wait_for(Generation& g) {
  Outcome o;
  GenerationEvent ev;
  for (int waited = 0; waited < 600; ++waited) {  // 60 s at most: a hung scheduler fails, not hangs
    if (!g.next(ev, 100)) continue;
    if (ev.done) {
      o.done = ev;
      return o;
    }
    o.text += ev.text;
    ++o.pieces;
  }
  ADD_FAILURE() << "generation did not finish";
  return o;
}

class SchedulerTiny : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    InitModelOptions o;
    o.arch = "qwen3";
    o.preset = "tiny";
    o.seed = 21;
    o.tokenizer_dir = testing::tokenizer_dir("qwen3");
    init_model(dir_->path + "/m", o);
    model_ = Model::load(dir_->path + "/m").release();
    tok_ = new text::Tokenizer(text::Tokenizer::load(dir_->path + "/m"));
    LoraSpec s;
    s.r = 4;
    s.alpha = 16;
    s.targets.fill(true);
    adapter_ = new LoraAdapter(init_lora(model_->config(), s, 5, /*random_b=*/true));
    save_peft_adapter(*adapter_, model_->config(), dir_->path + "/ad", "m");
  }
  static void TearDownTestSuite() {
    delete adapter_;
    delete tok_;
    delete model_;
    delete dir_;
  }

  // Random prompt ids of the given length (ids drawn from the first 5000: ordinary tokens).
  static std::vector<int32_t> random_prompt(uint64_t seed, int n) {
    Rng rng(seed);
    std::vector<int32_t> ids;
    for (int i = 0; i < n; ++i) ids.push_back(int32_t(rng.below(5000)));
    return ids;
  }

  static GenerationRequest greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.sampling.temperature = 0;
    r.max_tokens = max_tokens;
    return r;
  }

  // The one-by-one reference: infer::generate on the same weights.
  static infer::GenerateResult reference(const GenerationRequest& r, const LoraAdapter* adapter) {
    model_->set_adapter(adapter);
    infer::GenerateOptions opt;
    opt.sampling = r.sampling;
    opt.max_tokens = r.max_tokens;
    opt.stop_strings = r.stop_strings;
    auto res = infer::generate(*model_, tok_, r.prompt, opt);
    model_->set_adapter(nullptr);
    return res;
  }

  static std::unique_ptr<InferenceService> service(int parallel, int64_t ctx) {
    auto svc = std::make_unique<InferenceService>();
    ModelLoadOptions lo;
    lo.path = dir_->path + "/m";
    lo.name = "tiny";
    lo.device = "cpu";
    lo.parallel = parallel;
    lo.context = ctx;
    lo.adapters = {{"ft", dir_->path + "/ad"}};
    svc->load(lo);
    return svc;
  }

  static testing::TempDir* dir_;
  static Model* model_;
  static text::Tokenizer* tok_;
  static LoraAdapter* adapter_;
};
testing::TempDir* SchedulerTiny::dir_ = nullptr;
Model* SchedulerTiny::model_ = nullptr;
text::Tokenizer* SchedulerTiny::tok_ = nullptr;
LoraAdapter* SchedulerTiny::adapter_ = nullptr;

TEST_F(SchedulerTiny, BatchedEqualsOneByOneWithAdaptersAndChunkedPrefill) {
  auto svc = service(/*parallel=*/3, /*ctx=*/800);
  // More requests than slots (some queue), mixed lengths, a prompt longer than one step's token
  // budget (prefilled in chunks while others decode), base and adapter requests interleaved.
  std::vector<int> lengths = {5, 37, 1, 600, 12, 23, 3};
  std::vector<int64_t> max_tokens = {9, 14, 6, 8, 11, 5, 13};
  std::vector<GenerationRequest> reqs;
  std::vector<std::shared_ptr<Generation>> gens;
  for (size_t i = 0; i < lengths.size(); ++i) {
    reqs.push_back(greedy(random_prompt(100 + i, lengths[i]), max_tokens[i]));
    gens.push_back(svc->submit(svc->resolve(i % 2 ? "tiny:ft" : "tiny"), reqs.back()));
  }
  int differs_from_base = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    Outcome got = wait_for(*gens[i]);
    auto want = reference(reqs[i], i % 2 ? adapter_ : nullptr);
    std::printf("request %zu (%s, %d prompt tokens): %lld tokens, %zu pieces\n", i, i % 2 ? "adapter" : "base",
                lengths[i], (long long)got.done.completion_tokens, got.pieces);
    EXPECT_EQ(got.text, want.text) << "request " << i;
    EXPECT_EQ(got.done.completion_tokens, int64_t(want.ids.size())) << "request " << i;
    EXPECT_EQ(got.done.finish_reason, want.finish_reason) << "request " << i;
    EXPECT_EQ(got.done.prompt_tokens, lengths[i]);
    if (i % 2 && reference(reqs[i], nullptr).text != want.text) ++differs_from_base;
  }
  EXPECT_GT(differs_from_base, 0) << "the adapter changed no output: the test cannot tell adapters apart";
}

// Regression: an adapter request finishing in the adapter group's call of a step used to be
// picked up, reset, by the base group's call of the same step (null sampler: the server died).
// Adapter slot 0 and base slot 1 decode together; the adapter one stops first.
TEST_F(SchedulerTiny, AdapterRequestFinishingBeforeTheBaseGroupOfTheSameStep) {
  auto svc = service(/*parallel=*/2, /*ctx=*/200);
  for (int round = 0; round < 3; ++round) {
    GenerationRequest ra = greedy(random_prompt(300 + round, 6), 2 + round);
    GenerationRequest rb = greedy(random_prompt(400 + round, 6), 9);
    auto ga = svc->submit(svc->resolve("tiny:ft"), ra);
    auto gb = svc->submit(svc->resolve("tiny"), rb);
    Outcome a = wait_for(*ga), b = wait_for(*gb);
    EXPECT_EQ(a.text, reference(ra, adapter_).text) << "round " << round;
    EXPECT_EQ(b.text, reference(rb, nullptr).text) << "round " << round;
  }
}

TEST_F(SchedulerTiny, StopStringCutsTextAndIsReported) {
  auto svc = service(2, 256);
  GenerationRequest r = greedy(random_prompt(7, 9), 24);
  std::string free_text = reference(r, nullptr).text;
  ASSERT_GT(free_text.size(), 8u) << free_text;
  std::string stop = free_text.substr(free_text.size() / 2, 3);
  r.stop_strings = {stop};
  Outcome got = wait_for(*svc->submit(svc->resolve("tiny"), r));
  EXPECT_EQ(got.text, free_text.substr(0, free_text.find(stop)));
  EXPECT_EQ(got.done.finish_reason, "stop");
  EXPECT_EQ(got.done.stop_sequence, stop);
}

TEST_F(SchedulerTiny, CancellationFreesTheSlot) {
  auto svc = service(/*parallel=*/1, /*ctx=*/2048);
  auto ref = svc->resolve("tiny");
  GenerationRequest long_req = greedy(random_prompt(3, 4), 2000);
  auto a = svc->submit(ref, long_req);
  auto queued = svc->submit(ref, greedy(random_prompt(4, 4), 5));
  queued->cancel();  // cancelled while waiting for the only slot
  GenerationEvent ev;
  ASSERT_TRUE(a->next(ev, 30000));  // a is running
  a->cancel();
  Outcome oa = wait_for(*a);
  EXPECT_EQ(oa.done.finish_reason, "cancelled");
  EXPECT_LT(oa.done.completion_tokens, 2000);
  Outcome oq = wait_for(*queued);
  EXPECT_EQ(oq.done.finish_reason, "cancelled");
  EXPECT_EQ(oq.done.completion_tokens, 0);
  // The only slot is free again: a new request runs to completion.
  GenerationRequest b = greedy(random_prompt(5, 6), 7);
  Outcome ob = wait_for(*svc->submit(ref, b));
  EXPECT_EQ(ob.done.finish_reason, "length");
  EXPECT_EQ(ob.text, reference(b, nullptr).text);
}

TEST_F(SchedulerTiny, ContextAndModelIdErrors) {
  auto svc = service(2, 64);
  auto ref = svc->resolve("tiny");
  EXPECT_THROW(svc->submit(ref, greedy(random_prompt(1, 60), 5)), ContextLengthExceeded);
  EXPECT_THROW(svc->submit(ref, greedy(random_prompt(1, 64), 0)), ContextLengthExceeded);
  EXPECT_THROW(svc->submit(ref, greedy({}, 5)), Error);
  EXPECT_THROW(svc->submit(ref, greedy({1, 1 << 30}, 5)), Error);
  EXPECT_THROW(svc->resolve("nope"), ModelNotFound);
  EXPECT_THROW(svc->resolve("tiny:nope"), ModelNotFound);
  EXPECT_EQ(svc->model_ids(), (std::vector<std::string>{"tiny", "tiny:ft"}));
  // max_tokens 0 means "until the context is full".
  Outcome o = wait_for(*svc->submit(ref, greedy(random_prompt(2, 50), 0)));
  EXPECT_EQ(o.done.completion_tokens, 14);
  EXPECT_EQ(o.done.finish_reason, "length");
  svc->unload("tiny");
  EXPECT_THROW(svc->resolve("tiny"), ModelNotFound);
}

}  // namespace
}  // namespace brisk::server
