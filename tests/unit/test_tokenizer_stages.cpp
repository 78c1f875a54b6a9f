// Tokenizer stages in isolation: normalisers, pre-tokenisers, decoders and Unicode helpers,
// each built from the tokenizer.json fragment that describes it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/tok_decoder.h"
#include "text/tok_normalizer.h"
#include "text/tok_pretokenizer.h"
#include "text/tok_unicode.h"

namespace {

using nlohmann::json;
using namespace brisk::text;
using Strings = std::vector<std::string>;

std::string norm(const json& j, const std::string& s) { return make_normalizer(j)->normalize(s); }

TEST(TokNormalizer, EachType) {
  EXPECT_EQ(norm({{"type", "NFC"}}, "e\xCC\x81 A\xCC\x8A \xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"), "\xC3\xA9 \xC3\x85 \xED\x95\x9C");
  EXPECT_EQ(norm({{"type", "NFD"}}, "\xC3\xA9"), "e\xCC\x81");
  // Canonical reordering: dot below (ccc 220) goes before acute (ccc 230).
  EXPECT_EQ(norm({{"type", "NFD"}}, "a\xCC\x81\xCC\xA3"), "a\xCC\xA3\xCC\x81");
  EXPECT_EQ(norm({{"type", "NFC"}}, "\xE2\x84\xAB"), "\xC3\x85");  // Angstrom sign -> Å (singleton)
  EXPECT_EQ(norm({{"type", "Lowercase"}}, "ABC \xC3\x89\xCE\xA3 \xC4\xB0"), "abc \xC3\xA9\xCF\x83 i\xCC\x87");
  EXPECT_EQ(norm({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}}, " \t\xE3\x80\x80x "), "x ");
  EXPECT_EQ(norm({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}, " x\xC2\xA0"), "x");
  EXPECT_EQ(norm({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, "a"), "\xE2\x96\x81" "a");
  EXPECT_EQ(norm({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, ""), "");
  EXPECT_EQ(norm({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "_"}}, "a b  c"), "a_b__c");
  EXPECT_EQ(norm({{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}}, "a b   c"), "a b c");
  json seq = {{"type", "Sequence"},
              {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "_"}},
                                            {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "_"}}})}};
  EXPECT_EQ(norm(seq, "a b"), "_a_b");
}

Strings pretok(const json& j, const std::string& s, bool at_origin = true) {
  std::vector<Piece> pieces{{s, at_origin}};
  make_pre_tokenizer(j)->pre_tokenize(pieces);
  Strings out;
  for (auto& p : pieces) out.push_back(p.text);
  return out;
}

json split(const std::string& behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
}

TEST(TokPreTokenizer, SplitBehaviours) {
  EXPECT_EQ(pretok(split("Isolated"), "a-b--c"), (Strings{"a", "-", "b", "-", "-", "c"}));
  EXPECT_EQ(pretok(split("Removed"), "a-b--c"), (Strings{"a", "b", "c"}));
  EXPECT_EQ(pretok(split("MergedWithPrevious"), "a-b--c"), (Strings{"a-", "b-", "-", "c"}));
  EXPECT_EQ(pretok(split("MergedWithNext"), "a-b--c"), (Strings{"a", "-b", "-", "-c"}));
  EXPECT_EQ(pretok(split("Contiguous"), "a-b--c"), (Strings{"a", "-", "b", "--", "c"}));
  // invert: the pattern marks what to keep; each match stays a separate piece.
  EXPECT_EQ(pretok(split("Removed", true), "a-b--c"), (Strings{"-", "-", "-"}));
  json re = {{"type", "Split"}, {"pattern", {{"Regex", "\\p{N}{1,3}"}}}, {"behavior", "Isolated"}, {"invert", false}};
  EXPECT_EQ(pretok(re, "x12345"), (Strings{"x", "123", "45"}));
}

TEST(TokPreTokenizer, ByteLevelAndMetaspace) {
  json bl = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  EXPECT_EQ(pretok(bl, "Hi  there\n"), (Strings{"\xC4\xA0Hi", "\xC4\xA0", "\xC4\xA0there", "\xC4\x8A"}));
  json ms = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_EQ(pretok(ms, "a b"), (Strings{"\xE2\x96\x81" "a", "\xE2\x96\x81" "b"}));
  json first = ms;
  first["prepend_scheme"] = "first";
  first["split"] = false;
  EXPECT_EQ(pretok(first, "a b", true), (Strings{"\xE2\x96\x81" "a\xE2\x96\x81" "b"}));
  EXPECT_EQ(pretok(first, "a b", false), (Strings{"a\xE2\x96\x81" "b"}));
  EXPECT_EQ(pretok(first, " a", true), (Strings{"\xE2\x96\x81" "a"}));  // already starts with ▁
}

Strings dec(const json& j, Strings tokens) {
  make_decoder(j)->decode_chain(tokens);
  return tokens;
}

TEST(TokDecoder, EachType) {
  EXPECT_EQ(dec({{"type", "ByteLevel"}}, {"\xC4\xA0Hi", "\xC4\x8A", "<|x|>"}), (Strings{" Hi\n<|x|>"}));
  EXPECT_EQ(dec({{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}}, {"\xE2\x96\x81" "a"}),
            (Strings{" a"}));
  EXPECT_EQ(dec({{"type", "ByteFallback"}}, {"<0xE4>", "<0xB8>", "<0xAD>", "x", "<0xFF>", "<0x0g>"}),
            (Strings{"\xE4\xB8\xAD", "x", "\xEF\xBF\xBD", "<0x0g>"}));
  EXPECT_EQ(dec({{"type", "Fuse"}}, {"a", "b", "c"}), (Strings{"abc"}));
  EXPECT_EQ(dec({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 1}}, {"  a  ", "b"}), (Strings{" a ", "b"}));
  json ms = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_EQ(dec(ms, {"\xE2\x96\x81" "a", "\xE2\x96\x81" "b"}), (Strings{"a", " b"}));
  ms["prepend_scheme"] = "never";
  EXPECT_EQ(dec(ms, {"\xE2\x96\x81" "a"}), (Strings{" a"}));
  json seq = {{"type", "Sequence"}, {"decoders", json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}};
  EXPECT_EQ(dec(seq, {"a", "<0x41>"}), (Strings{"aA"}));
}

TEST(TokUnicode, LossyDecodingMatchesRust) {
  EXPECT_EQ(utf8_lossy("a\xE2\x82" "b"), "a\xEF\xBF\xBD" "b");            // truncated sequence: one U+FFFD
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");           // overlong: each byte
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(utf8_invalid_at("ok\xF4\x90\x80\x80"), 2u);                   // above U+10FFFF
  EXPECT_EQ(utf8_invalid_at("\xF0\x9F\x98\x80"), std::string::npos);
}

}  // namespace
