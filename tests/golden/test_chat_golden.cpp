// Chat-template parity with transformers.apply_chat_template(tokenize=False): every case of
// chat_cases.json must render byte for byte as in data/chat_refs.json (made on the GPU machine
// by make_text_refs.py); cases where Hugging Face raised must raise here too.
#include <gtest/gtest.h>

#include <fstream>

#include "common/test_util.h"
#include "core/fs.h"
#include "text/chat_template.h"

namespace {

using json = nlohmann::ordered_json;
using brisk::testing::source_path;

// The first differing byte with some context on both sides, escaped so whitespace shows.
std::string show_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  auto snippet = [&](const std::string& s) {
    size_t b = i > 80 ? i - 80 : 0;
    std::string raw = s.substr(b, 160), out;
    for (char c : raw) out += c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t") : std::string(1, c);
    return out;
  };
  return brisk::cat("first difference at byte ", i, " (expected ", want.size(), " bytes, got ", got.size(),
                    ")\n  expected: ...", snippet(want), "...\n  brisk:    ...", snippet(got), "...");
}

TEST(ChatGolden, MatchesTransformers) {
  std::string refs_path = source_path("tests/golden/data/chat_refs.json");
  ASSERT_TRUE(brisk::file_exists(refs_path))
      << refs_path << " is missing: on the GPU machine run `python3 tests/golden/make_text_refs.py` "
      << "(see tests/golden/data/README.md) and commit its chat_refs.json";
  json cases = json::parse(brisk::read_file(source_path("tests/golden/chat_cases.json")));
  json refs = json::parse(brisk::read_file(refs_path));
  ASSERT_EQ(refs["cases"].size(), cases.size()) << "chat_refs.json is stale: regenerate it from chat_cases.json";

  int checked = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const json& c = cases[i];
    const json& ref = refs["cases"][i];
    std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(name);
    ASSERT_EQ(ref["name"], c["name"]) << "chat_refs.json is out of order";

    std::string dir = brisk::testing::tokenizer_dir(c["tokenizer"].get<std::string>());
    json cfg = json::parse(brisk::read_file(dir + "/tokenizer_config.json"));
    json tools = c["tools"];
    std::string result, error;
    try {
      std::string source, origin;
      if (c["template"].is_string()) {
        origin = c["template"].get<std::string>();
        source = brisk::read_file(source_path("tests/golden/" + origin));
      } else {
        auto found = brisk::text::find_chat_template(dir, tools.is_array() && !tools.empty());
        ASSERT_TRUE(found.has_value()) << "no chat template in " << dir;
        source = found->text;
        origin = found->origin;
      }
      brisk::text::ChatTemplate tmpl(source, origin);
      result = tmpl.render(c["messages"], tools, c["add_generation_prompt"].get<bool>(),
                           brisk::text::special_token_text(cfg, "bos_token"),
                           brisk::text::special_token_text(cfg, "eos_token"), c["kwargs"]);
    } catch (const brisk::Error& e) {
      error = e.what();
    }
    if (ref.contains("error")) {
      EXPECT_FALSE(error.empty()) << "Hugging Face raised (" << ref["error"].get<std::string>()
                                  << ") but brisk rendered:\n" << result;
    } else {
      std::string want = ref["rendered"].get<std::string>();
      EXPECT_TRUE(error.empty()) << "brisk raised: " << error;
      if (error.empty()) EXPECT_TRUE(result == want) << show_difference(want, result);
    }
    ++checked;
  }
  EXPECT_EQ(checked, int(cases.size()));
}

}  // namespace
