#include <gtest/gtest.h>

#include "common/test_util.h"
#include "infer/generate.h"
#include "model/init_model.h"

namespace brisk::infer {
namespace {

TEST(FindStop, FindsEarliestStopAndHoldsBackPrefixes) {
  size_t hold = 99;
  EXPECT_EQ(find_stop("hello world", {"wor", "lo"}, &hold), 3u);
  EXPECT_EQ(find_stop("hello wo", {"world"}, &hold), std::string::npos);
  EXPECT_EQ(hold, 2u);  // "wo" may become "world"
  EXPECT_EQ(find_stop("hello", {"xyz"}, &hold), std::string::npos);
  EXPECT_EQ(hold, 0u);
  EXPECT_EQ(find_stop("abc", {}, &hold), std::string::npos);
  EXPECT_EQ(hold, 0u);
  EXPECT_EQ(find_stop("abc", {""}, &hold), std::string::npos);  // empty stop strings are ignored
}

class GenerateTiny : public ::testing::Test {
 protected:
  void SetUp() override {
    InitModelOptions o;
    o.arch = "llama";
    o.preset = "tiny";
    o.seed = 11;
    init_model(dir.path + "/m", o);
    model = Model::load(dir.path + "/m");
  }
  testing::TempDir dir;
  std::unique_ptr<Model> model;
};

TEST_F(GenerateTiny, SameSeedSameOutputOtherSeedOtherOutput) {
  GenerateOptions opt;
  opt.sampling.temperature = 1.5f;
  opt.max_tokens = 24;
  opt.sampling.seed = 1;
  auto a = generate(*model, nullptr, {1, 2, 3}, opt);
  auto b = generate(*model, nullptr, {1, 2, 3}, opt);
  opt.sampling.seed = 2;
  auto c = generate(*model, nullptr, {1, 2, 3}, opt);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_NE(a.ids, c.ids);
  EXPECT_EQ(a.ids.size(), 24u);
  EXPECT_EQ(a.finish_reason, "length");
}

TEST_F(GenerateTiny, StopIdEndsGenerationAndIsReported) {
  GenerateOptions opt;
  opt.sampling.temperature = 0;
  opt.max_tokens = 16;
  auto free_run = generate(*model, nullptr, {4, 5, 6}, opt);
  ASSERT_GE(free_run.ids.size(), 4u);
  opt.stop_ids = {free_run.ids[3]};
  auto stopped = generate(*model, nullptr, {4, 5, 6}, opt);
  // Stops at the first occurrence of that id, which it includes (as HF generate does).
  size_t first = size_t(std::find(free_run.ids.begin(), free_run.ids.end(), free_run.ids[3]) - free_run.ids.begin());
  ASSERT_EQ(stopped.ids.size(), first + 1);
  EXPECT_EQ(stopped.finish_reason, "stop");
}

TEST_F(GenerateTiny, MaxTokensZeroGeneratesNothing) {
  GenerateOptions opt;
  opt.max_tokens = 0;
  auto r = generate(*model, nullptr, {1}, opt);
  EXPECT_TRUE(r.ids.empty());
}

}  // namespace
}  // namespace brisk::infer
