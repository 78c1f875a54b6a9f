// Tokenizer unit tests on small hand-built tokenizer.json files: each BPE option, added-token
// flags, post-processing, errors, and streaming decode. Parity with Hugging Face on real
// tokenizers is in tests/golden/test_tokenizer_golden.cpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/error.h"
#include "text/tok_unicode.h"
#include "text/tokenizer.h"

namespace {

using nlohmann::json;
using brisk::text::StreamDecoder;
using brisk::text::Tokenizer;
using Ids = std::vector<int32_t>;

// A char-level BPE over "a".."e" plus merged tokens; callers adjust the JSON.
json base_json() {
  return json{{"version", "1.0"},
              {"added_tokens", json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", nullptr},
              {"post_processor", nullptr},
              {"decoder", {{"type", "Fuse"}}},
              {"model",
               {{"type", "BPE"},
                {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"d", 3}, {"e", 4}, {"ab", 5}, {"bc", 6}, {"abc", 7}, {" ", 8}}},
                {"merges", json::array({"a b", "ab c"})}}}};
}

Tokenizer make(const json& tj, const json& config = json::object()) {
  return Tokenizer::from_json(tj.dump(), config.dump());
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const brisk::Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Tokenizer, MergesInBothSerialisationsGiveTheSameIds) {
  json pairs = base_json();
  pairs["model"]["merges"] = json::array({json::array({"a", "b"}), json::array({"ab", "c"})});
  EXPECT_EQ(make(base_json()).encode("abcab"), (Ids{7, 5}));
  EXPECT_EQ(make(pairs).encode("abcab"), (Ids{7, 5}));
}

TEST(Tokenizer, LowerRankMergeWinsThenLeftmost) {
  json tj = base_json();
  tj["model"]["merges"] = json::array({"b c", "a b"});  // "bc" outranks "ab"
  EXPECT_EQ(make(tj).encode("abc"), (Ids{0, 6}));
  EXPECT_EQ(make(tj).encode("abab"), (Ids{5, 5}));  // equal ranks: left to right
}

TEST(Tokenizer, IgnoreMergesEmitsWholeWordFromVocab) {
  json tj = base_json();
  tj["model"]["merges"] = json::array();
  EXPECT_EQ(make(tj).encode("abc"), (Ids{0, 1, 2}));
  tj["model"]["ignore_merges"] = true;
  EXPECT_EQ(make(tj).encode("abc"), (Ids{7}));
}

TEST(Tokenizer, ByteFallbackAndUnknownTokens) {
  json tj = base_json();
  tj["model"]["vocab"]["<unk>"] = 9;
  tj["model"]["vocab"]["<0xC3>"] = 10;
  tj["model"]["vocab"]["<0xA9>"] = 11;
  tj["model"]["unk_token"] = "<unk>";
  tj["decoder"] = {{"type", "Sequence"}, {"decoders", json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}};
  EXPECT_EQ(make(tj).encode("xya"), (Ids{9, 9, 0}));  // no byte fallback, unk not fused
  tj["model"]["fuse_unk"] = true;
  EXPECT_EQ(make(tj).encode("xya"), (Ids{9, 0}));
  tj["model"]["byte_fallback"] = true;
  Tokenizer t = make(tj);
  EXPECT_EQ(t.encode("\xC3\xA9" "a"), (Ids{10, 11, 0}));   // é -> its two byte tokens
  EXPECT_EQ(t.encode("\xE2\x82\xAC"), (Ids{9}));          // € has no byte tokens -> unk
  EXPECT_EQ(t.decode({10, 11, 0}), "\xC3\xA9" "a");
  EXPECT_EQ(t.decode({10, 0}), "\xEF\xBF\xBD" "a");         // an invalid byte run -> U+FFFD per byte
}

TEST(Tokenizer, RejectsUnsupportedComponentsByName) {
  json tj = base_json();
  tj["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  EXPECT_NE(error_of([&] { make(tj); }).find("unsupported pre_tokenizer type \"BertPreTokenizer\""), std::string::npos);
  tj = base_json();
  tj["model"]["continuing_subword_prefix"] = "##";
  EXPECT_NE(error_of([&] { make(tj); }).find("continuing_subword_prefix"), std::string::npos);
  tj = base_json();
  tj["model"]["type"] = "Unigram";
  EXPECT_NE(error_of([&] { make(tj); }).find("unsupported model type \"Unigram\""), std::string::npos);
  tj = base_json();
  tj["normalizer"] = {{"type", "NFKC"}};
  EXPECT_NE(error_of([&] { make(tj); }).find("unsupported normalizer type \"NFKC\""), std::string::npos);
  tj = base_json();
  tj["decoder"] = {{"type", "CTC"}};
  EXPECT_NE(error_of([&] { make(tj); }).find("unsupported decoder type \"CTC\""), std::string::npos);
  tj = base_json();
  tj["model"]["merges"] = json::array({"a zz"});
  EXPECT_NE(error_of([&] { make(tj); }).find("missing from model.vocab"), std::string::npos);
}

TEST(Tokenizer, MalformedJsonIsOneClearError) {
  std::string text = base_json().dump();
  std::string err = error_of([&] { Tokenizer::from_json(text.substr(0, text.size() / 2), ""); });
  EXPECT_NE(err.find("malformed JSON in tokenizer.json"), std::string::npos) << err;
  err = error_of([&] { Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": [1,2], "merges": []}})", ""); });
  EXPECT_NE(err.find("model.vocab must be an object"), std::string::npos) << err;
  EXPECT_NE(error_of([&] { Tokenizer::load("/nonexistent/dir"); }).find("not found"), std::string::npos);
}

TEST(Tokenizer, InvalidUtf8AndOutOfRangeIdsAreErrors) {
  Tokenizer t = make(base_json());
  EXPECT_NE(error_of([&] { t.encode("ab\xC3"); }).find("not valid UTF-8 (byte 2)"), std::string::npos);
  EXPECT_NE(error_of([&] { t.decode({0, 99}); }).find("token id 99 is out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { t.decode({-1}); }).find("out of range"), std::string::npos);
}

json with_added(json tj, const json& tok) {
  tj["added_tokens"].push_back(tok);
  return tj;
}

json added(int id, const std::string& content, bool special, json flags = json::object()) {
  json t = {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
            {"normalized", false}, {"special", special}};
  t.update(flags);
  return t;
}

TEST(Tokenizer, AddedTokensLongestMatchAndSpecialSkipping) {
  json tj = with_added(with_added(base_json(), added(20, "<x>", true)), added(21, "<x>>", false));
  Tokenizer t = make(tj);
  EXPECT_EQ(t.encode("a<x>>b<x>c"), (Ids{0, 21, 1, 20, 2}));
  EXPECT_TRUE(t.is_special(20));
  EXPECT_FALSE(t.is_special(21));
  EXPECT_EQ(t.decode({0, 20, 21, 1}), "a<x><x>>b");
  EXPECT_EQ(t.decode({0, 20, 21, 1}, true), "a<x>>b");
  EXPECT_EQ(t.vocab_size(), 22);
  EXPECT_EQ(t.token_to_id("<x>>"), 21);
  EXPECT_EQ(t.id_to_token(20), "<x>");
}

TEST(Tokenizer, AddedTokenStripAndSingleWord) {
  Tokenizer l = make(with_added(base_json(), added(20, "<m>", true, {{"lstrip", true}})));
  EXPECT_EQ(l.encode("a  <m> b"), (Ids{0, 20, 8, 1}));
  Tokenizer r = make(with_added(base_json(), added(20, "<m>", true, {{"rstrip", true}})));
  EXPECT_EQ(r.encode("a  <m> b"), (Ids{0, 8, 8, 20, 1}));
  Tokenizer w = make(with_added(base_json(), added(20, "cd", false, {{"single_word", true}})));
  EXPECT_EQ(w.encode("a cd e"), (Ids{0, 8, 20, 8, 4}));
  EXPECT_EQ(w.encode("acd"), (Ids{0, 2, 3}));  // inside a word: not matched
}

TEST(Tokenizer, NormalizedAddedTokensMatchAfterNormalisation) {
  json tj = with_added(base_json(), added(20, "AB", false, {{"normalized", true}}));
  tj["normalizer"] = {{"type", "Lowercase"}};
  Tokenizer t = make(tj);
  EXPECT_EQ(t.encode("cABd"), (Ids{2, 20, 3}));  // pattern "ab" after lowercasing both
  EXPECT_EQ(t.encode("cabd"), (Ids{2, 20, 3}));
}

TEST(Tokenizer, PostProcessorFromTemplateAndConfigFlags) {
  json tj = with_added(with_added(base_json(), added(20, "<s>", true)), added(21, "</s>", true));
  tj["post_processor"] = {{"type", "TemplateProcessing"},
                          {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                          {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {20}}, {"tokens", {"<s>"}}}}}}};
  EXPECT_EQ(make(tj).encode("ab"), (Ids{20, 5}));
  EXPECT_EQ(make(tj).encode("ab", false), (Ids{5}));
  // transformers v5: explicit add_bos_token/add_eos_token rebuild the template.
  json cfg = {{"bos_token", "<s>"}, {"eos_token", {{"content", "</s>"}, {"__type", "AddedToken"}}},
              {"add_bos_token", false}, {"add_eos_token", true}};
  Tokenizer t = make(tj, cfg);
  EXPECT_EQ(t.encode("ab"), (Ids{5, 21}));
  EXPECT_EQ(t.bos_token(), "<s>");
  EXPECT_EQ(t.eos_token(), "</s>");
  EXPECT_EQ(t.bos_id(), 20);
  EXPECT_EQ(t.eos_id(), 21);
}

TEST(Tokenizer, ByteLevelRoundTrip) {
  json tj = base_json();
  // Byte-level vocab: all 256 byte characters plus one merge.
  json vocab = json::object();
  const auto& alphabet = brisk::text::ByteLevelAlphabet::get();
  for (int b = 0; b < 256; ++b) vocab[alphabet.byte_to_utf8[b]] = b;
  vocab["\xC4\xA0" "a"] = 256;  // "Ġa"
  tj["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"\xC4\xA0 a"})}};
  tj["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  tj["decoder"] = {{"type", "ByteLevel"}};
  Tokenizer t = make(tj);
  EXPECT_EQ(t.encode("a a\n"), (Ids{'a', 256, 10}));  // GPT-2 split: "a", " a" (Ġa), "\n" (Ċ = byte 10)
  std::string text = "x a \xF0\x9F\x98\x80 \xE4\xB8\xAD\t\r\n";
  EXPECT_EQ(t.decode(t.encode(text)), text);
  EXPECT_EQ(t.decode({0xF0, 0x9F}), "\xEF\xBF\xBD");  // truncated UTF-8 -> one replacement char
}

TEST(StreamDecoder, NeverSplitsUtf8AndMatchesOneShotDecode) {
  for (const char* name : {"llama3", "gemma3", "llama2"}) {
    Tokenizer t = Tokenizer::load(brisk::testing::tokenizer_dir(name));
    std::string text = "Hi \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\xA0\x80\x80 caf\xC3\xA9 <s> end ";
    Ids ids = t.encode(text);
    StreamDecoder sd(t, false);
    std::string streamed;
    for (int32_t id : ids) {
      std::string chunk = sd.push(id);
      EXPECT_EQ(brisk::text::utf8_invalid_at(chunk), std::string::npos) << name << ": chunk splits a character";
      streamed += chunk;
    }
    streamed += sd.flush();
    EXPECT_EQ(streamed, t.decode(ids)) << name;
  }
}

TEST(Tokenizer, CliTokenizeDetokenizeRoundTripAndErrors) {
  brisk::testing::TempDir tmp;
  std::string dir = brisk::testing::tokenizer_dir("qwen3");
  std::string in = tmp.path + "/in.txt", out;
  brisk::write_file_atomic(in, "Hello <|im_start|> w\xC3\xB6rld");
  ASSERT_EQ(brisk::testing::run_command(std::string(BRISK_BINARY) + " tokenize " + dir + " < " + in, &out), 0);
  Tokenizer t = Tokenizer::load(dir);
  EXPECT_EQ(json::parse(out).get<Ids>(), t.encode("Hello <|im_start|> w\xC3\xB6rld"));
  brisk::write_file_atomic(in, out);
  out.clear();
  ASSERT_EQ(brisk::testing::run_command(std::string(BRISK_BINARY) + " detokenize " + dir + " < " + in, &out), 0);
  EXPECT_EQ(out, "Hello <|im_start|> w\xC3\xB6rld");
  brisk::write_file_atomic(in, "[1, 99999999]");
  EXPECT_EQ(brisk::testing::run_command(std::string(BRISK_BINARY) + " detokenize " + dir + " < " + in + " 2>/dev/null"), 1);
  brisk::write_file_atomic(in, "a\xFF");
  EXPECT_EQ(brisk::testing::run_command(std::string(BRISK_BINARY) + " tokenize " + dir + " < " + in + " 2>/dev/null"), 1);
}

}  // namespace
