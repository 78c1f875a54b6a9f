// make_rope_table against the tables transformers builds on the CPU (fp32 bit patterns written
// by tests/golden/make_rope_reference.py). Expected bit-exact; torch's vectorised fp32 pow
// (about 1 ulp) may differ from a correctly rounded one, so 1 ulp is allowed and counted.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/fs.h"
#include "model/rope.h"

namespace brisk {
namespace {

RopeType rope_type(const std::string& s) {
  if (s == "linear") return RopeType::Linear;
  if (s == "dynamic") return RopeType::Dynamic;
  if (s == "llama3") return RopeType::Llama3;
  if (s == "yarn") return RopeType::Yarn;
  return RopeType::Default;
}

TEST(RopeGolden, MatchesTransformers) {
  std::string path = testing::source_path("tests/golden/data/rope_tables.json");
  if (!file_exists(path)) GTEST_SKIP() << path << " not generated yet (tests/golden/make_rope_reference.py)";
  auto j = nlohmann::json::parse(read_file(path));
  std::printf("  reference: transformers %s, torch %s\n", j["transformers"].get<std::string>().c_str(),
              j["torch"].get<std::string>().c_str());
  for (auto& c : j["cases"]) {
    ModelConfig cfg;
    cfg.head_dim = c["head_dim"];
    cfg.rope_theta = c["rope_theta"];
    cfg.max_position_embeddings = c["max_position_embeddings"];
    auto& rs = c["rope_scaling"];
    cfg.rope_scaling.type = rope_type(rs.value("rope_type", "default"));
    cfg.rope_scaling.factor = rs.value("factor", 1.0);
    cfg.rope_scaling.low_freq_factor = rs.value("low_freq_factor", 1.0);
    cfg.rope_scaling.high_freq_factor = rs.value("high_freq_factor", 4.0);
    cfg.rope_scaling.original_max_position_embeddings = rs.value("original_max_position_embeddings", int64_t(0));
    cfg.rope_scaling.attention_factor = rs.value("attention_factor", 0.0);
    cfg.rope_scaling.beta_fast = rs.value("beta_fast", 32.0);
    cfg.rope_scaling.beta_slow = rs.value("beta_slow", 1.0);
    RopeTable t = make_rope_table(cfg);
    auto expect_bits = c["inv_freq_bits"].get<std::vector<uint32_t>>();
    std::string name = c["name"];
    ASSERT_EQ(t.inv_freq.size(), expect_bits.size()) << name;
    int off_by_one = 0;
    for (size_t i = 0; i < expect_bits.size(); ++i) {
      uint32_t got;
      std::memcpy(&got, &t.inv_freq[i], 4);
      int64_t d = std::llabs(int64_t(got) - int64_t(expect_bits[i]));  // positive floats: ulps apart
      EXPECT_LE(d, 1) << name << " inv_freq[" << i << "]";
      off_by_one += d == 1;
    }
    EXPECT_EQ(t.mscale, float(c["attention_scaling"].get<double>())) << name;
    std::printf("  %-24s %zu entries, %d differ by 1 ulp\n", name.c_str(), expect_bits.size(), off_by_one);
  }
}

}  // namespace
}  // namespace brisk
