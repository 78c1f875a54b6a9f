// GGUF tokenizer metadata: real tokenizers (Llama 3, Qwen3, Llama 2) written to a GGUF file,
// read back, and rebuilt by tokenizer_from_gguf must encode the whole golden corpus to the ids
// of the original tokenizer and decode back to the same text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/fs.h"
#include "io/gguf.h"
#include "text/gguf_vocab.h"

using namespace brisk;
using namespace brisk::text;
using brisk::testing::TempDir;
using brisk::testing::tokenizer_dir;

namespace {

std::vector<std::string> corpus() {
  auto j = nlohmann::json::parse(read_file(brisk::testing::source_path("tests/golden/tokenizer_corpus.json")));
  std::vector<std::string> out = j.get<std::vector<std::string>>();
  // Special tokens inside text, and around it.
  out.push_back("<|im_start|>user\nhi<|im_end|>\n<|eot_id|><s>x</s><unk>");
  out.push_back("<|begin_of_text|>Hello<|end_of_text|>");
  return out;
}

io::GGUFFile write_and_read(const GGUFVocab& v) {
  io::GGUFWriter w;
  w.set("general.architecture", io::GGUFValue::str("llama"));
  write_gguf_vocab(v, w);
  TempDir dir;
  std::string path = dir.path + "/v.gguf";
  w.write(path);
  std::string bytes = read_file(path);
  return io::GGUFFile::from_bytes(bytes.data(), bytes.size(), "v.gguf");
}

void expect_same_tokenizer(const std::string& name) {
  std::string dir = tokenizer_dir(name);
  Tokenizer hf = Tokenizer::load(dir);
  GGUFVocab v = gguf_vocab_from_dir(dir);
  io::GGUFFile f = write_and_read(v);
  Tokenizer back = tokenizer_from_gguf(f);
  EXPECT_EQ(back.vocab_size(), hf.vocab_size());
  size_t n = 0;
  for (const std::string& text : corpus()) {
    for (bool specials : {true, false}) {
      std::vector<int32_t> want = hf.encode(text, specials);
      std::vector<int32_t> got = back.encode(text, specials);
      EXPECT_EQ(got, want) << name << " text: " << text;
      if (got != want && ++n > 5) return;  // enough to diagnose
      EXPECT_EQ(back.decode(want), hf.decode(want)) << name << " text: " << text;
      EXPECT_EQ(back.decode(want, true), hf.decode(want, true)) << name << " text: " << text;
    }
  }
}

std::vector<std::string> strings(const io::GGUFFile& f, const char* key) {
  return std::get<std::vector<std::string>>(f.get(key).v);
}
std::vector<int64_t> ints(const io::GGUFFile& f, const char* key) {
  return std::get<std::vector<int64_t>>(f.get(key).v);
}

}  // namespace

TEST(GGUFVocab, Llama3IsByteLevelWithLlamaBpePre) {
  GGUFVocab v = gguf_vocab_from_dir(tokenizer_dir("llama3"));
  io::GGUFFile f = write_and_read(v);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "llama-bpe");
  auto tokens = strings(f, "tokenizer.ggml.tokens");
  auto types = ints(f, "tokenizer.ggml.token_type");
  ASSERT_EQ(tokens.size(), 128256u);
  EXPECT_EQ(tokens[128000], "<|begin_of_text|>");
  EXPECT_EQ(types[128000], 3);
  EXPECT_EQ(tokens[220], "\xC4\xA0");  // "Ġ": the byte-level spelling of a space
  EXPECT_EQ(types[220], 1);
  EXPECT_EQ(f.get("tokenizer.ggml.token_type").elem_type, io::GGUFType::I32);
  EXPECT_EQ(strings(f, "tokenizer.ggml.merges").size(), 280147u);
  EXPECT_EQ(strings(f, "tokenizer.ggml.merges")[0], "\xC4\xA0 \xC4\xA0");  // "Ġ Ġ"
  EXPECT_EQ(f.get("tokenizer.ggml.bos_token_id").type, io::GGUFType::U32);
  EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id"), 128000);
  EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), 128001);
  EXPECT_EQ(f.get_int("tokenizer.ggml.eot_token_id"), 128009);
  EXPECT_FALSE(f.has("tokenizer.ggml.scores"));
  // This copy of the Llama 3 tokenizer adds no BOS (its post-processor is ByteLevel only).
  EXPECT_EQ(f.get_bool("tokenizer.ggml.add_bos_token"), Tokenizer::load(tokenizer_dir("llama3")).encode("a").size() == 2);
}

TEST(GGUFVocab, Qwen3IsByteLevelWithQwen2Pre) {
  GGUFVocab v = gguf_vocab_from_dir(tokenizer_dir("qwen3"));
  io::GGUFFile f = write_and_read(v);
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "qwen2");
  auto tokens = strings(f, "tokenizer.ggml.tokens");
  auto types = ints(f, "tokenizer.ggml.token_type");
  ASSERT_EQ(tokens.size(), 151669u);
  EXPECT_EQ(tokens[151645], "<|im_end|>");
  EXPECT_EQ(types[151645], 3);
  EXPECT_EQ(tokens[151657], "<tool_call>");  // added but not special: user-defined
  EXPECT_EQ(types[151657], 4);
  EXPECT_EQ(types[151659], 3);  // "<|fim_prefix|>" is not special but looks it: control, as the converter decides
  EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), 151645);
  EXPECT_EQ(f.get_int("tokenizer.ggml.padding_token_id"), 151643);
  EXPECT_EQ(f.get_int("tokenizer.ggml.eot_token_id"), 151645);
  EXPECT_FALSE(f.has("tokenizer.ggml.bos_token_id"));
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_NE(f.get_string("tokenizer.chat_template").find("<|im_start|>"), std::string::npos);
}

TEST(GGUFVocab, Llama2IsSentencePieceWithScores) {
  GGUFVocab v = gguf_vocab_from_dir(tokenizer_dir("llama2"));
  io::GGUFFile f = write_and_read(v);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");
  auto tokens = strings(f, "tokenizer.ggml.tokens");
  auto types = ints(f, "tokenizer.ggml.token_type");
  auto scores = std::get<std::vector<double>>(f.get("tokenizer.ggml.scores").v);
  ASSERT_EQ(tokens.size(), 32000u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(types[0], 2);
  EXPECT_EQ(types[1], 3);
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(types[3], 6);
  // Scores replay the merge ranks: "▁t" comes from merge 0 ("▁ t"), "in" from merge 1.
  EXPECT_EQ(tokens[261], "\xE2\x96\x81t");
  EXPECT_EQ(scores[261], 0.0);
  EXPECT_EQ(tokens[262], "in");
  EXPECT_EQ(scores[262], -1.0);
  EXPECT_EQ(scores[3], 0.0);  // byte tokens are never merge results
  EXPECT_FALSE(f.has("tokenizer.ggml.merges"));
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_eos_token"));
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_space_prefix"));
  EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f.get_int("tokenizer.ggml.unknown_token_id"), 0);
}

TEST(GGUFVocab, Llama3RoundTripEncodesTheCorpusIdentically) { expect_same_tokenizer("llama3"); }
TEST(GGUFVocab, Qwen3RoundTripEncodesTheCorpusIdentically) { expect_same_tokenizer("qwen3"); }
TEST(GGUFVocab, Llama2RoundTripEncodesTheCorpusIdentically) { expect_same_tokenizer("llama2"); }

TEST(GGUFVocab, UnknownPreTokenizerIsRefusedByName) {
  TempDir dir;
  std::string src = tokenizer_dir("qwen3");
  auto tj = nlohmann::json::parse(read_file(src + "/tokenizer.json"));
  tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+|\\S+";
  write_file_atomic(dir.path + "/tokenizer.json", tj.dump());
  write_file_atomic(dir.path + "/tokenizer_config.json", read_file(src + "/tokenizer_config.json"));
  try {
    gguf_vocab_from_dir(dir.path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("regex is not one llama.cpp knows"), std::string::npos) << e.what();
  }
}

TEST(GGUFVocab, RebuildRejectsBadMetadata) {
  io::GGUFWriter w;
  w.set("tokenizer.ggml.model", io::GGUFValue::str("bert"));
  w.set("tokenizer.ggml.tokens", io::GGUFValue::strings({"a"}));
  TempDir dir;
  w.write(dir.path + "/x.gguf");
  EXPECT_THROW(tokenizer_from_gguf(io::GGUFFile::open(dir.path + "/x.gguf")), Error);

  io::GGUFWriter w2;
  w2.set("tokenizer.ggml.model", io::GGUFValue::str("gpt2"));
  w2.set("tokenizer.ggml.pre", io::GGUFValue::str("qwen2"));
  w2.set("tokenizer.ggml.tokens", io::GGUFValue::strings({"a", "b"}));
  w2.set("tokenizer.ggml.token_type", io::GGUFValue::i32s({1}));
  w2.write(dir.path + "/y.gguf");
  EXPECT_THROW(tokenizer_from_gguf(io::GGUFFile::open(dir.path + "/y.gguf")), Error);
}
