// Tool-call parsing on canned model outputs (random tiny models never write tool calls).
#include <gtest/gtest.h>

#include "server/tool_calls.h"

namespace brisk::server {
namespace {

using ojson = nlohmann::ordered_json;

TEST(ToolCalls, QwenTagWithTextAround) {
  auto r = parse_tool_calls(
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n"
      "</tool_call>");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, ojson::parse(R"({"city":"Paris","days":2})"));
  EXPECT_EQ(r.content, "Let me check.");
}

TEST(ToolCalls, SeveralQwenCallsAndStringArguments) {
  auto r = parse_tool_calls(
      "<tool_call>\n{\"name\": \"a\", \"arguments\": \"{\\\"x\\\": 1}\"}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>\n");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].name, "a");
  EXPECT_EQ(r.tool_calls[0].arguments, ojson::parse(R"({"x":1})"));  // a JSON string is parsed
  EXPECT_EQ(r.tool_calls[1].name, "b");
  EXPECT_TRUE(r.tool_calls[1].arguments.is_object() && r.tool_calls[1].arguments.empty());
  EXPECT_EQ(r.content, "");
}

TEST(ToolCalls, UnterminatedLastTagWithCompleteJsonCounts) {
  auto r = parse_tool_calls("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"<b>\"}}\n");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments["q"], "<b>");
}

TEST(ToolCalls, BrokenJsonInTagStaysText) {
  std::string text = "sure <tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>";
  auto r = parse_tool_calls(text);
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content, text);
}

TEST(ToolCalls, LlamaBareJsonWithParameters) {
  auto r = parse_tool_calls("{\"name\": \"search\", \"parameters\": {\"query\": \"brisk\"}}");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "search");
  EXPECT_EQ(r.tool_calls[0].arguments, ojson::parse(R"({"query":"brisk"})"));
  EXPECT_EQ(r.content, "");
}

TEST(ToolCalls, LlamaPythonTagAndSemicolonSeparatedCalls) {
  auto r = parse_tool_calls("<|python_tag|>{\"name\": \"a\", \"arguments\": {\"k\": 1}}; {\"name\": \"b\", \"parameters\": {}}");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].name, "a");
  EXPECT_EQ(r.tool_calls[1].name, "b");
}

TEST(ToolCalls, PlainJsonThatIsNotACallStaysText) {
  for (std::string text : {"{\"answer\": 42}", "{\"name\": 5, \"arguments\": {}}", "{\"name\": \"f\", \"arguments\": [1]}",
                           "The JSON is {\"name\": \"f\"}", "no calls here  \n"}) {
    auto r = parse_tool_calls(text);
    EXPECT_TRUE(r.tool_calls.empty()) << text;
    EXPECT_EQ(r.content, text.substr(0, text.find_last_not_of(" \n") + 1)) << text;
  }
}

TEST(ToolCalls, StreamingSafePrefixHoldsBackPossibleCalls) {
  EXPECT_EQ(tool_text_safe_prefix("Hello there"), 11u);
  EXPECT_EQ(tool_text_safe_prefix("Hello <tool"), 6u);          // may become <tool_call>
  EXPECT_EQ(tool_text_safe_prefix("Hello <tool_call>{\"na"), 6u);
  EXPECT_EQ(tool_text_safe_prefix("a < b"), 5u);               // '<' followed by a non-tag
  EXPECT_EQ(tool_text_safe_prefix("  {\"name\""), 0u);          // a Llama-style call
  EXPECT_EQ(tool_text_safe_prefix("<|python"), 0u);
  EXPECT_EQ(tool_text_safe_prefix("\n\n"), 0u);                 // nothing decided yet
}

}  // namespace
}  // namespace brisk::server
