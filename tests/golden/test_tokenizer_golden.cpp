// Parity with Hugging Face: every corpus string (tests/golden/tokenizer_corpus.json) encoded and
// decoded by brisk must equal transformers' AutoTokenizer output recorded in
// tests/golden/data/tokenizer_refs.json (made on a machine with transformers by
// tests/golden/make_text_refs.py). BRISK_TOKENIZER_REFS=path overrides the file, e.g. to check
// against a transformers.js stand-in while the HF file is not there yet.
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "text/tokenizer.h"

namespace {

using nlohmann::json;
using brisk::text::Tokenizer;

std::string refs_path() {
  if (const char* p = std::getenv("BRISK_TOKENIZER_REFS")) return p;
  return BRISK_SOURCE_DIR "/tests/golden/data/tokenizer_refs.json";
}

const json& refs() {
  static const json j = [] {
    std::string path = refs_path();
    if (!brisk::file_exists(path)) return json();
    return json::parse(brisk::read_file(path));
  }();
  return j;
}

std::string quote(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

// "position i: expected [.. a ..] got [.. b ..]" with a few tokens of context around the first
// difference, each shown as id and token string.
std::string describe_mismatch(const Tokenizer& tok, const std::vector<int32_t>& want, const std::vector<int32_t>& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  auto show = [&](const std::vector<int32_t>& v) {
    std::ostringstream os;
    os << "[";
    size_t b = i >= 3 ? i - 3 : 0, e = std::min(v.size(), i + 4);
    if (b > 0) os << "... ";
    for (size_t k = b; k < e; ++k) os << (k == i ? ">" : "") << v[k] << ":" << quote(tok.id_to_token(v[k])) << (k + 1 < e ? " " : "");
    if (e < v.size()) os << " ...";
    os << "] (" << v.size() << " ids)";
    return os.str();
  };
  return brisk::cat("first difference at position ", i, "\n  expected ", show(want), "\n  got      ", show(got));
}

void check_tokenizer(const std::string& name) {
  const json& r = refs();
  ASSERT_FALSE(r.is_null()) << "missing " << refs_path()
                            << ": generate it on a machine with transformers: python3 tests/golden/make_text_refs.py "
                               "(writes tests/golden/data/tokenizer_refs.json), then commit it";
  ASSERT_TRUE(r["tokenizers"].contains(name)) << "no \"" << name << "\" entry in " << refs_path();
  const json& entry = r["tokenizers"][name];
  Tokenizer tok = Tokenizer::load(brisk::testing::tokenizer_dir(name));
  if (entry.contains("vocab_size") && entry["vocab_size"].is_number())
    EXPECT_EQ(tok.vocab_size(), entry["vocab_size"].get<int32_t>()) << name << " vocab_size";
  size_t failures = 0, cases = 0;
  for (const json& c : entry["cases"]) {
    ++cases;
    std::string text = c["text"];
    std::string where = brisk::cat(name, " text ", quote(text.size() > 200 ? text.substr(0, 200) + "..." : text));
    auto want_ids = c["ids"].get<std::vector<int32_t>>();
    auto want_ns = c["ids_no_special"].get<std::vector<int32_t>>();
    auto ids = tok.encode(text, true);
    auto ids_ns = tok.encode(text, false);
    bool ok = true;
    if (ids != want_ids) ADD_FAILURE() << where << " ids: " << describe_mismatch(tok, want_ids, ids), ok = false;
    if (ids_ns != want_ns) ADD_FAILURE() << where << " ids_no_special: " << describe_mismatch(tok, want_ns, ids_ns), ok = false;
    // Decoding is checked on the reference ids so that an encode bug does not hide a decode bug.
    std::string decoded = tok.decode(want_ids, false), decoded_skip = tok.decode(want_ids, true);
    if (decoded != c["decoded"].get<std::string>())
      ADD_FAILURE() << where << " decoded: expected " << quote(c["decoded"]) << " got " << quote(decoded), ok = false;
    if (decoded_skip != c["decoded_skip"].get<std::string>())
      ADD_FAILURE() << where << " decoded_skip: expected " << quote(c["decoded_skip"]) << " got " << quote(decoded_skip),
          ok = false;
    failures += !ok;
    if (failures >= 5) {
      ADD_FAILURE() << name << ": stopping after 5 failing cases";
      break;
    }
  }
  EXPECT_GE(cases, 100u) << name << ": too few cases in " << refs_path();
}

TEST(TokenizerGolden, Llama3) { check_tokenizer("llama3"); }
TEST(TokenizerGolden, Qwen3) { check_tokenizer("qwen3"); }
TEST(TokenizerGolden, Gemma3) { check_tokenizer("gemma3"); }
TEST(TokenizerGolden, Llama2) { check_tokenizer("llama2"); }

}  // namespace
