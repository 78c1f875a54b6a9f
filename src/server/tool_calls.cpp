#include "server/tool_calls.h"

#include <optional>

namespace brisk::server {

using ojson = nlohmann::ordered_json;

namespace {

constexpr const char* kOpen = "<tool_call>";
constexpr const char* kClose = "</tool_call>";
constexpr const char* kPythonTag = "<|python_tag|>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::string rtrim(std::string s) {
  while (!s.empty() && is_space(s.back())) s.pop_back();
  return s;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::optional<ojson> parse_json(const std::string& s) {
  try {
    return ojson::parse(s);
  } catch (const ojson::parse_error&) {
    return std::nullopt;
  }
}

// {"name": string, "arguments"|"parameters": object or JSON-object string} -> a call.
std::optional<ToolCall> call_from_json(const ojson& j) {
  if (!j.is_object()) return std::nullopt;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty()) return std::nullopt;
  auto args = j.find("arguments");
  if (args == j.end()) args = j.find("parameters");
  ToolCall call{name->get<std::string>(), ojson::object()};
  if (args == j.end() || args->is_null()) return call;
  if (args->is_object()) {
    call.arguments = *args;
  } else if (args->is_string()) {
    auto inner = parse_json(args->get<std::string>());
    if (!inner || !inner->is_object()) return std::nullopt;
    call.arguments = *inner;
  } else {
    return std::nullopt;
  }
  return call;
}

// The Llama 3.1 form: the whole reply is one call or ';'-separated calls.
std::optional<std::vector<ToolCall>> parse_bare_json_calls(std::string body) {
  body = trim(body);
  if (body.rfind(kPythonTag, 0) == 0) body = trim(body.substr(std::string(kPythonTag).size()));
  if (body.empty() || body[0] != '{') return std::nullopt;
  if (auto j = parse_json(body)) {
    if (auto c = call_from_json(*j)) return std::vector<ToolCall>{*c};
    return std::nullopt;
  }
  std::vector<ToolCall> calls;
  size_t start = 0;
  while (start <= body.size()) {
    size_t semi = body.find(';', start);
    std::string part = trim(body.substr(start, semi == std::string::npos ? std::string::npos : semi - start));
    auto j = parse_json(part);
    if (!j) return std::nullopt;  // a ';' inside a string: not this form
    auto c = call_from_json(*j);
    if (!c) return std::nullopt;
    calls.push_back(*c);
    if (semi == std::string::npos) break;
    start = semi + 1;
  }
  if (calls.empty()) return std::nullopt;
  return calls;
}

}  // namespace

ParsedReply parse_tool_calls(const std::string& text) {
  ParsedReply out;
  // Qwen / Hermes tags. An unterminated last tag (generation stopped at the end-of-turn token
  // before </tool_call>, which some fine-tunes do) still counts when its JSON is complete.
  std::string outside;
  size_t pos = 0;
  bool any_tag = false;
  while (true) {
    size_t open = text.find(kOpen, pos);
    if (open == std::string::npos) {
      outside += text.substr(pos);
      break;
    }
    size_t body_start = open + std::string(kOpen).size();
    size_t close = text.find(kClose, body_start);
    std::string body = text.substr(body_start, close == std::string::npos ? std::string::npos : close - body_start);
    std::optional<ToolCall> call;
    if (auto j = parse_json(trim(body))) call = call_from_json(*j);
    if (!call) {  // not a call: keep the text as it was and stop looking
      outside += text.substr(pos);
      break;
    }
    any_tag = true;
    outside += text.substr(pos, open - pos);
    out.tool_calls.push_back(std::move(*call));
    if (close == std::string::npos) break;
    pos = close + std::string(kClose).size();
  }
  if (any_tag) {
    out.content = rtrim(outside);
    return out;
  }
  if (auto calls = parse_bare_json_calls(text)) {
    out.tool_calls = std::move(*calls);
    return out;
  }
  out.content = rtrim(text);
  return out;
}

size_t tool_text_safe_prefix(const std::string& text) {
  size_t first = 0;
  while (first < text.size() && is_space(text[first])) ++first;
  if (first == text.size()) return 0;  // only whitespace so far: the call may still come
  std::string rest = text.substr(first);
  const std::string tag = kPythonTag;
  if (rest[0] == '{') return 0;
  if (rest.size() < tag.size() ? tag.compare(0, rest.size(), rest) == 0 : rest.rfind(tag, 0) == 0) return 0;
  size_t open = text.find(kOpen);
  if (open != std::string::npos) return open;
  // A partial "<tool_call>" at the very end must wait for the next piece.
  const std::string o = kOpen;
  for (size_t k = std::min(o.size() - 1, text.size()); k > 0; --k)
    if (text.compare(text.size() - k, k, o, 0, k) == 0) return text.size() - k;
  return text.size();
}

}  // namespace brisk::server
