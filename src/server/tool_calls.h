// Tool calls in a model's output text, in the two formats open models are trained on:
//   Qwen / Hermes:  <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>  (any number,
//                   with free text around them)
//   Llama 3.1:      the whole reply is {"name": "f", "parameters": {...}} (or "arguments"),
//                   optionally after <|python_tag|>; several calls may be separated by ';'.
// Anything that does not parse as a call stays ordinary text: a model that writes half a tag or
// invalid JSON gets its text back unchanged rather than an error.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace brisk::server {

struct ToolCall {
  std::string name;
  nlohmann::ordered_json arguments;  // a JSON object (a string argument that holds JSON is parsed)
};

struct ParsedReply {
  std::string content;  // text outside the calls (right-trimmed; "" when only calls)
  std::vector<ToolCall> tool_calls;
};

ParsedReply parse_tool_calls(const std::string& text);

// While streaming a reply that may contain tool calls: how many leading bytes of `text` (the
// reply so far) are certainly ordinary text and can be sent. Holds back from the start of a
// <tool_call> tag (or a partial one at the end), and everything when the reply starts like a
// Llama-style JSON call ('{' or <|python_tag|> after optional whitespace).
size_t tool_text_safe_prefix(const std::string& text);

}  // namespace brisk::server
