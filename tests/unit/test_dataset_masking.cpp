// Train-on-responses-only masking with real tokenizers and chat templates: the trained tokens
// of every example decode to exactly the assistant contents plus their end-of-turn text, and
// the ids are exactly the tokens of the text the template renders.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "train/data_formats.h"
#include "train/data_tokenize.h"
#include "train/dataset.h"

namespace {

using json = nlohmann::ordered_json;
using namespace brisk::train;
using brisk::text::ChatTemplate;
using brisk::text::Tokenizer;

struct Model {
  Tokenizer tok;
  std::optional<ChatTemplate> tmpl;
};

// Loaded once per test binary: the tokenizer files are large.
const Model& model(const std::string& name) {
  static std::map<std::string, Model> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    const std::string dir = brisk::testing::tokenizer_dir(name);
    Model m{Tokenizer::load(dir), std::nullopt};
    if (auto src = brisk::text::find_chat_template(dir, false)) m.tmpl.emplace(src->text, src->origin);
    it = cache.emplace(name, std::move(m)).first;
  }
  return it->second;
}

// The decoded text of each maximal run of trained positions; checks trained labels equal ids.
std::vector<std::string> trained_spans(const Example& ex, const Tokenizer& tok) {
  EXPECT_EQ(ex.ids.size(), ex.labels.size());
  std::vector<std::string> spans;
  std::vector<int32_t> run;
  for (size_t i = 0; i <= ex.ids.size(); ++i) {
    if (i < ex.ids.size() && ex.labels[i] != kIgnoreLabel) {
      EXPECT_EQ(ex.labels[i], ex.ids[i]) << "position " << i;
      run.push_back(ex.ids[i]);
    } else if (!run.empty()) {
      spans.push_back(tok.decode(run));
      run.clear();
    }
  }
  return spans;
}

json msg(const char* role, const char* content) { return {{"role", role}, {"content", content}}; }

Example chat(const std::string& name, const json& messages, bool responses_only = true, const json& kwargs = json::object()) {
  const Model& m = model(name);
  return tokenize_conversation(messages, m.tok, &*m.tmpl, responses_only, kwargs);
}

TEST(DatasetMasking, Llama3SingleTurnTrainsContentAndEotOnly) {
  const Model& m = model("llama3");
  json conv = json::array({msg("system", "You are terse."), msg("user", "What is 2+2?"), msg("assistant", "It is 4.")});
  Example ex = chat("llama3", conv);
  // This Llama 3 template appends the assistant header even without add_generation_prompt, as
  // transformers renders it; those trailing tokens are in the ids but never trained.
  const std::string expected_text =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nIt is 4.<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(ex.ids, m.tok.encode(expected_text, false));
  EXPECT_EQ(trained_spans(ex, m.tok), (std::vector<std::string>{"It is 4.<|eot_id|>"}));
}

TEST(DatasetMasking, Llama3MultiTurnTrainsEveryAssistantTurn) {
  const Model& m = model("llama3");
  json conv = json::array({msg("user", "Hi"), msg("assistant", "Hello! How can I help?"), msg("user", "Name a color."),
                           msg("assistant", "Blue.")});
  Example ex = chat("llama3", conv);
  EXPECT_EQ(trained_spans(ex, m.tok), (std::vector<std::string>{"Hello! How can I help?<|eot_id|>", "Blue.<|eot_id|>"}));
}

TEST(DatasetMasking, Qwen3TrainsThinkBlockContentImEndAndNewline) {
  const Model& m = model("qwen3");
  json conv = json::array({msg("system", "Be brief."), msg("user", "Hi"), msg("assistant", "Hello."), msg("user", "Bye"),
                           msg("assistant", "Goodbye!")});
  Example ex = chat("qwen3", conv);
  const std::string expected_text =
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
      "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nGoodbye!<|im_end|>\n";
  EXPECT_EQ(ex.ids, m.tok.encode(expected_text, false));
  // Earlier turns render without the empty think block, the last one with it (Qwen3's template).
  EXPECT_EQ(trained_spans(ex, m.tok),
            (std::vector<std::string>{"Hello.<|im_end|>\n", "<think>\n\n</think>\n\nGoodbye!<|im_end|>\n"}));
}

TEST(DatasetMasking, Qwen3WithThinkingDisabledTreatsTheEmptyThinkBlockAsPrompt) {
  const Model& m = model("qwen3");
  json conv = json::array({msg("user", "Hi"), msg("assistant", "Hello."), msg("user", "Bye"), msg("assistant", "Ciao.")});
  Example ex = chat("qwen3", conv, true, json{{"enable_thinking", false}});
  // With enable_thinking=false the generation prompt itself ends with the empty think block, so
  // the model is never asked to produce it.
  EXPECT_NE(m.tok.decode(ex.ids).find("<|im_start|>assistant\n<think>\n\n</think>\n\nCiao.<|im_end|>\n"), std::string::npos);
  EXPECT_EQ(trained_spans(ex, m.tok), (std::vector<std::string>{"Hello.<|im_end|>\n", "Ciao.<|im_end|>\n"}));
}

TEST(DatasetMasking, Qwen3ToolCallsAreTrainedToolResultsAreNot) {
  const Model& m = model("qwen3");
  json conv = json::parse(R"([{"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}}]},
      {"role": "tool", "content": "18C"}, {"role": "assistant", "content": "It is 18C."}])");
  json tools = json::parse(R"([{"type": "function", "function": {"name": "weather", "parameters": {}}}])");
  Example ex = tokenize_chat(conv, tools, 0, m.tok, *m.tmpl, true, json::object());
  EXPECT_EQ(trained_spans(ex, m.tok),
            (std::vector<std::string>{
                "<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n",
                "<think>\n\n</think>\n\nIt is 18C.<|im_end|>\n"}));
}

TEST(DatasetMasking, Gemma3TrainsContentEndOfTurnAndNewline) {
  const Model& m = model("gemma3");
  json conv = json::array({msg("system", "Sys."), msg("user", "Q1"), msg("assistant", "A1"), msg("user", "Q2"), msg("assistant", "A2")});
  Example ex = chat("gemma3", conv);
  EXPECT_EQ(ex.ids, m.tok.encode("<bos><start_of_turn>user\nSys.\n\nQ1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n"
                                 "<start_of_turn>user\nQ2<end_of_turn>\n<start_of_turn>model\nA2<end_of_turn>\n",
                                 false));
  EXPECT_EQ(trained_spans(ex, m.tok), (std::vector<std::string>{"A1<end_of_turn>\n", "A2<end_of_turn>\n"}));
}

TEST(DatasetMasking, WithoutResponsesOnlyEveryTokenIsTrained) {
  const Model& m = model("llama3");
  json conv = json::array({msg("user", "Hi"), msg("assistant", "Hello")});
  Example ex = chat("llama3", conv, false);
  EXPECT_EQ(ex.labels, ex.ids);
  EXPECT_EQ(ex.ids.front(), *m.tok.bos_id());
}

TEST(DatasetMasking, PromptMessagesInPromptCompletionAreContext) {
  const Model& m = model("qwen3");
  ParsedRow row = parse_row(json::parse(R"({"prompt": [{"role": "user", "content": "1+1"}, {"role": "assistant", "content": "2"},
      {"role": "user", "content": "2+2"}], "completion": [{"role": "assistant", "content": "4"}]})"), "prompt_completion");
  Example ex = tokenize_chat(row.messages, nullptr, row.first_trained_message, m.tok, *m.tmpl, true, json::object());
  EXPECT_EQ(trained_spans(ex, m.tok), (std::vector<std::string>{"<think>\n\n</think>\n\n4<|im_end|>\n"}));
}

TEST(DatasetMasking, AlpacaWithoutTemplateTrainsResponseAndEos) {
  const Model& m = model("llama2");
  ASSERT_FALSE(m.tmpl);
  ParsedRow row = parse_row(json::parse(R"({"instruction": "Name a fruit.", "output": "Apple."})"), "alpaca");
  Example ex = tokenize_prompt_response(row.plain_prompt, row.plain_response, m.tok, true);
  EXPECT_EQ(ex.ids.front(), *m.tok.bos_id());
  EXPECT_EQ(ex.ids.back(), *m.tok.eos_id());
  EXPECT_EQ(trained_spans(ex, m.tok), (std::vector<std::string>{"Apple.</s>"}));
  // The masked part is exactly the prompt's tokens (BOS included).
  const std::vector<int32_t> prompt_ids = m.tok.encode(row.plain_prompt, true);
  size_t masked = 0;
  while (masked < ex.labels.size() && ex.labels[masked] == kIgnoreLabel) ++masked;
  ASSERT_EQ(masked, prompt_ids.size());
  EXPECT_EQ(std::vector<int32_t>(ex.ids.begin(), ex.ids.begin() + static_cast<long>(masked)), prompt_ids);
}

TEST(DatasetMasking, TextFormatTrainsEverythingAndEndsWithEos) {
  const Model& m = model("llama3");
  Example ex = tokenize_text("The quick brown fox.", m.tok);
  std::vector<int32_t> expected = m.tok.encode("The quick brown fox.", true);
  expected.push_back(*m.tok.eos_id());
  EXPECT_EQ(ex.ids, expected);
  EXPECT_EQ(ex.labels, ex.ids);
  // No second EOS when the text already ends with one.
  Example ended = tokenize_text("Done.<|end_of_text|>", m.tok);
  EXPECT_EQ(ended.ids, m.tok.encode("Done.<|end_of_text|>", true));
}

TEST(DatasetMasking, NoTemplateIsAClearError) {
  const Model& m = model("llama2");
  EXPECT_THROW(tokenize_conversation(json::array({msg("user", "a"), msg("assistant", "b")}), m.tok, nullptr, true, json::object()),
               brisk::Error);
}

TEST(DatasetMasking, TemplateThatRewritesEarlierTurnsIsAnErrorNamingIt) {
  const Model& m = model("llama3");
  // Renders the first message only while it is the last one: earlier text changes as turns are added.
  ChatTemplate weird("{% for m in messages %}{% if loop.last %}[{{ m.content }}]{% else %}<{{ m.content }}>{% endif %}{% endfor %}",
                     "weird.jinja");
  json conv = json::array({msg("user", "u"), msg("assistant", "a")});
  try {
    tokenize_conversation(conv, m.tok, &weird, true, json::object());
    FAIL() << "expected an error";
  } catch (const brisk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("chat template weird.jinja, assistant message 1"), std::string::npos) << e.what();
  }
}

}  // namespace
