#include "server/api_requests.h"

#include <random>

#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace brisk::server {

namespace {

const json& require(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) throw HttpError(400, cat("'", key, "' is required"), key);
  return *it;
}

void check_range(const char* key, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi)) throw HttpError(400, cat("'", key, "' must be in [", lo, ", ", hi, "], got ", v), key);
}

// Options every endpoint shares (OpenAI names; Anthropic's are mapped by its parser).
SamplingOptions parse_sampling(const json& b, const char* stop_key) {
  SamplingOptions s;
  s.temperature = get_number(b, "temperature", -1);
  if (b.contains("temperature") && !b["temperature"].is_null()) check_range("temperature", s.temperature, 0, 2);
  s.top_p = get_number(b, "top_p", -1);
  if (s.top_p != -1 && !(s.top_p > 0 && s.top_p <= 1)) throw HttpError(400, "'top_p' must be in (0, 1]", "top_p");
  s.min_p = get_number(b, "min_p", -1);
  if (s.min_p != -1) check_range("min_p", s.min_p, 0, 1);
  s.top_k = get_int(b, "top_k", -1);
  if (b.contains("top_k") && !b["top_k"].is_null() && s.top_k < 0) throw HttpError(400, "'top_k' must be >= 0", "top_k");
  s.repetition_penalty = get_number(b, "repetition_penalty", -1);
  if (s.repetition_penalty != -1 && !(s.repetition_penalty > 0))
    throw HttpError(400, "'repetition_penalty' must be > 0", "repetition_penalty");
  s.presence_penalty = get_number(b, "presence_penalty", 0);
  check_range("presence_penalty", s.presence_penalty, -2, 2);
  s.frequency_penalty = get_number(b, "frequency_penalty", 0);
  check_range("frequency_penalty", s.frequency_penalty, -2, 2);
  if (b.contains("seed") && !b["seed"].is_null()) {
    s.has_seed = true;
    s.seed = uint64_t(get_int(b, "seed", 0));
  }
  auto stop = b.find(stop_key);
  if (stop != b.end() && !stop->is_null()) {
    if (stop->is_string()) {
      s.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const json& x : *stop) {
        if (!x.is_string()) throw HttpError(400, cat("'", stop_key, "' must be a string or a list of strings"), stop_key);
        s.stop.push_back(x.get<std::string>());
      }
    } else {
      throw HttpError(400, cat("'", stop_key, "' must be a string or a list of strings"), stop_key);
    }
    if (s.stop.size() > 16) throw HttpError(400, cat("'", stop_key, "' has more than 16 entries"), stop_key);
  }
  return s;
}

void parse_stream_flags(const json& b, bool* stream, bool* include_usage) {
  *stream = get_bool(b, "stream", false);
  auto so = b.find("stream_options");
  if (so != b.end() && !so->is_null()) {
    if (!so->is_object()) throw HttpError(400, "'stream_options' must be an object", "stream_options");
    *include_usage = get_bool(*so, "include_usage", false);
  }
}

void reject_unsupported(const json& b) {
  if (get_int(b, "n", 1) != 1) throw HttpError(400, "only n = 1 is supported", "n");
  if (get_bool(b, "logprobs", false) || (b.contains("logprobs") && b["logprobs"].is_number_integer()))
    throw HttpError(400, "logprobs are not supported", "logprobs");
  auto rf = b.find("response_format");
  if (rf != b.end() && !rf->is_null()) {
    if (!rf->is_object()) throw HttpError(400, "'response_format' must be an object", "response_format");
    std::string type = get_string(*rf, "type", "text");
    if (type != "text") throw HttpError(400, "response_format '" + type + "' is not supported (only 'text')", "response_format");
  }
}

int64_t parse_max_tokens(const json& b, const char* key) {
  int64_t n = get_int(b, key, 0);
  if (b.contains(key) && !b[key].is_null() && n < 1) throw HttpError(400, cat("'", key, "' must be >= 1"), key);
  return n;
}

// OpenAI content: a string, null, or a list of parts of which only text is supported.
std::string content_text(const json& content, const char* where) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) throw HttpError(400, cat(where, ".content must be a string or a list of parts"), "messages");
  std::string out;
  for (const json& part : content) {
    if (!part.is_object()) throw HttpError(400, cat(where, ".content parts must be objects"), "messages");
    std::string type = get_string(part, "type", "");
    if (type != "text") throw HttpError(400, cat(where, ": content part type '", type, "' is not supported (text only)"), "messages");
    if (!out.empty()) out += "\n";
    out += get_string(part, "text", "");
  }
  return out;
}

// Tool-call arguments reach templates as objects (Llama's template tojson's them; a JSON string
// would be encoded twice); a string that is not a JSON object is passed through unchanged.
json arguments_for_template(const json& args) {
  if (args.is_string()) {
    try {
      json j = json::parse(args.get<std::string>());
      if (j.is_object()) return j;
    } catch (const json::parse_error&) {
    }
  }
  return args;
}

json parse_openai_messages(const json& msgs) {
  if (!msgs.is_array() || msgs.empty()) throw HttpError(400, "'messages' must be a non-empty array", "messages");
  json out = json::array();
  for (size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    std::string where = cat("messages[", i, "]");
    if (!m.is_object()) throw HttpError(400, where + " must be an object", "messages");
    std::string role = get_string(m, "role", "");
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw HttpError(400, cat(where, ".role must be system, developer, user, assistant or tool, got '", role, "'"), "messages");
    json msg = {{"role", role}, {"content", content_text(m.contains("content") ? m["content"] : json(), where.c_str())}};
    if (role == "tool") msg["tool_call_id"] = get_string(m, "tool_call_id", "");
    if (m.contains("name") && m["name"].is_string()) msg["name"] = m["name"];
    if (m.contains("reasoning_content") && m["reasoning_content"].is_string()) msg["reasoning_content"] = m["reasoning_content"];
    auto tc = m.find("tool_calls");
    if (role == "assistant" && tc != m.end() && !tc->is_null()) {
      if (!tc->is_array()) throw HttpError(400, where + ".tool_calls must be an array", "messages");
      json calls = json::array();
      for (const json& c : *tc) {
        if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
          throw HttpError(400, where + ".tool_calls entries need a 'function' object", "messages");
        const json& f = c["function"];
        calls.push_back({{"id", get_string(c, "id", "")},
                         {"type", "function"},
                         {"function", {{"name", get_string(f, "name", "")},
                                       {"arguments", arguments_for_template(f.value("arguments", json::object()))}}}});
      }
      msg["tool_calls"] = calls;
    }
    out.push_back(std::move(msg));
  }
  return out;
}

json parse_openai_tools(const json& b) {
  auto t = b.find("tools");
  if (t == b.end() || t->is_null()) return nullptr;
  if (!t->is_array()) throw HttpError(400, "'tools' must be an array", "tools");
  for (const json& tool : *t)
    if (!tool.is_object() || !tool.contains("function") || !tool["function"].is_object() ||
        !tool["function"].contains("name") || !tool["function"]["name"].is_string())
      throw HttpError(400, "each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}", "tools");
  if (t->empty()) return nullptr;
  // tool_choice "none": the model must not call tools, so it is not told about them.
  auto choice = b.find("tool_choice");
  if (choice != b.end() && choice->is_string() && choice->get<std::string>() == "none") return nullptr;
  return *t;
}

}  // namespace

ChatRequest parse_chat_request(const json& b) {
  ChatRequest r;
  r.model = get_string(b, "model", "");
  if (r.model.empty()) throw HttpError(400, "'model' is required", "model");
  reject_unsupported(b);
  r.messages = parse_openai_messages(require(b, "messages"));
  r.tools = parse_openai_tools(b);
  r.sampling = parse_sampling(b, "stop");
  r.sampling.max_tokens = parse_max_tokens(b, "max_completion_tokens");
  if (r.sampling.max_tokens == 0) r.sampling.max_tokens = parse_max_tokens(b, "max_tokens");
  auto kw = b.find("chat_template_kwargs");
  if (kw != b.end() && !kw->is_null()) {
    if (!kw->is_object()) throw HttpError(400, "'chat_template_kwargs' must be an object", "chat_template_kwargs");
    r.template_kwargs = *kw;
  }
  parse_stream_flags(b, &r.stream, &r.include_usage);
  return r;
}

CompletionRequest parse_completion_request(const json& b) {
  CompletionRequest r;
  r.model = get_string(b, "model", "");
  if (r.model.empty()) throw HttpError(400, "'model' is required", "model");
  reject_unsupported(b);
  if (b.contains("suffix") && !b["suffix"].is_null()) throw HttpError(400, "'suffix' is not supported", "suffix");
  const json& p = require(b, "prompt");
  const json* one = &p;
  if (p.is_array() && p.size() == 1 && (p[0].is_string() || p[0].is_array())) one = &p[0];  // a batch of one
  if (one->is_string()) {
    r.prompt = one->get<std::string>();
  } else if (one->is_array() && !one->empty() && one->at(0).is_number_integer()) {
    for (const json& x : *one) {
      if (!x.is_number_integer()) throw HttpError(400, "'prompt' token ids must be integers", "prompt");
      r.prompt_ids.push_back(x.get<int32_t>());
    }
  } else {
    throw HttpError(400, "'prompt' must be a string, a list of token ids, or a list of one of those", "prompt");
  }
  r.echo = get_bool(b, "echo", false);
  r.sampling = parse_sampling(b, "stop");
  // OpenAI's default for the legacy completions endpoint is 16 tokens.
  r.sampling.max_tokens = b.contains("max_tokens") && !b["max_tokens"].is_null() ? parse_max_tokens(b, "max_tokens") : 16;
  parse_stream_flags(b, &r.stream, &r.include_usage);
  return r;
}

namespace {

// Anthropic text: a string or a list of {"type":"text","text"} blocks.
std::string anthropic_text(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) throw HttpError(400, where + " must be a string or a list of content blocks", "messages");
  std::string out;
  for (const json& blk : v) {
    if (!blk.is_object() || get_string(blk, "type", "") != "text")
      throw HttpError(400, where + ": only text blocks are supported here", "messages");
    if (!out.empty()) out += "\n";
    out += get_string(blk, "text", "");
  }
  return out;
}

void append_anthropic_message(const json& m, size_t i, json& out) {
  std::string where = cat("messages[", i, "]");
  if (!m.is_object()) throw HttpError(400, where + " must be an object", "messages");
  std::string role = get_string(m, "role", "");
  if (role != "user" && role != "assistant")
    throw HttpError(400, cat(where, ".role must be user or assistant, got '", role, "'"), "messages");
  const json& content = require(m, "content");
  if (content.is_string()) {
    out.push_back({{"role", role}, {"content", content.get<std::string>()}});
    return;
  }
  if (!content.is_array()) throw HttpError(400, where + ".content must be a string or a list of blocks", "messages");
  std::string text;
  json calls = json::array();
  for (size_t k = 0; k < content.size(); ++k) {
    const json& blk = content[k];
    std::string bw = cat(where, ".content[", k, "]");
    if (!blk.is_object()) throw HttpError(400, bw + " must be an object", "messages");
    std::string type = get_string(blk, "type", "");
    if (type == "text") {
      if (!text.empty()) text += "\n";
      text += get_string(blk, "text", "");
    } else if (type == "tool_use" && role == "assistant") {
      json input = blk.contains("input") ? blk["input"] : json::object();
      calls.push_back({{"id", get_string(blk, "id", "")},
                       {"type", "function"},
                       {"function", {{"name", get_string(blk, "name", "")}, {"arguments", input}}}});
    } else if (type == "tool_result" && role == "user") {
      // A tool result is its own "tool" turn for the template (as OpenAI clients send it).
      std::string result = blk.contains("content") && !blk["content"].is_null() ? anthropic_text(blk["content"], bw) : "";
      out.push_back({{"role", "tool"}, {"tool_call_id", get_string(blk, "tool_use_id", "")}, {"content", result}});
    } else if (type == "thinking" || type == "redacted_thinking") {
      continue;  // earlier reasoning is not replayed to the model
    } else {
      throw HttpError(400, cat(bw, ": block type '", type, "' is not supported for role ", role), "messages");
    }
  }
  if (role == "assistant") {
    json msg = {{"role", "assistant"}, {"content", text}};
    if (!calls.empty()) msg["tool_calls"] = calls;
    out.push_back(std::move(msg));
  } else if (!text.empty() || out.empty() || out.back()["role"] != "tool") {
    out.push_back({{"role", "user"}, {"content", text}});
  }
}

}  // namespace

ChatRequest parse_messages_request(const json& b) {
  ChatRequest r;
  r.model = get_string(b, "model", "");
  if (r.model.empty()) throw HttpError(400, "model: field required", "model");
  if (!b.contains("max_tokens") || b["max_tokens"].is_null()) throw HttpError(400, "max_tokens: field required", "max_tokens");
  r.sampling = parse_sampling(b, "stop_sequences");
  if (r.sampling.temperature != -1) check_range("temperature", r.sampling.temperature, 0, 1);
  r.sampling.max_tokens = parse_max_tokens(b, "max_tokens");
  if (b.contains("system") && !b["system"].is_null())
    r.messages.push_back({{"role", "system"}, {"content", anthropic_text(b["system"], "system")}});
  const json& msgs = require(b, "messages");
  if (!msgs.is_array() || msgs.empty()) throw HttpError(400, "messages: must be a non-empty list", "messages");
  for (size_t i = 0; i < msgs.size(); ++i) append_anthropic_message(msgs[i], i, r.messages);
  auto tools = b.find("tools");
  if (tools != b.end() && !tools->is_null()) {
    if (!tools->is_array()) throw HttpError(400, "tools: must be a list", "tools");
    json converted = json::array();
    for (const json& t : *tools) {
      if (!t.is_object() || get_string(t, "name", "").empty()) throw HttpError(400, "tools: each tool needs a name", "tools");
      converted.push_back({{"type", "function"},
                           {"function", {{"name", t["name"]},
                                         {"description", get_string(t, "description", "")},
                                         {"parameters", t.value("input_schema", json::object())}}}});
    }
    auto choice = b.find("tool_choice");
    bool none = choice != b.end() && choice->is_object() && get_string(*choice, "type", "") == "none";
    if (!converted.empty() && !none) r.tools = converted;
  }
  r.stream = get_bool(b, "stream", false);
  return r;
}

std::vector<int32_t> chat_prompt_ids(const ModelRef& ref, const ChatRequest& req) {
  const text::ChatTemplate* tmpl = ref.chat_template(!req.tools.is_null());
  if (!tmpl) throw HttpError(400, "model '" + ref.model_name() + "' has no chat template: use /v1/completions", "model");
  std::string prompt = tmpl->render(req.messages, req.tools, /*add_generation_prompt=*/true, ref.bos_token(),
                                    ref.eos_token(), req.template_kwargs);
  return ref.tokenizer().encode(prompt, /*add_special_tokens=*/false);
}

GenerationRequest make_generation_request(const ModelRef& ref, const SamplingOptions& s, std::vector<int32_t> prompt) {
  GenerationRequest g;
  infer::SamplingParams& p = g.sampling;
  // OpenAI's defaults (temperature 1, top_p 1), unless the model's generation_config.json asks
  // for sampling with its own values; what the client sends always wins.
  const GenerationConfig& gc = ref.generation_config();
  p.temperature = 1.0f;
  if (gc.do_sample) {
    if (gc.temperature >= 0) p.temperature = float(gc.temperature);
    if (gc.top_p > 0) p.top_p = float(gc.top_p);
    if (gc.top_k >= 0) p.top_k = int(gc.top_k);
    if (gc.min_p >= 0) p.min_p = float(gc.min_p);
  }
  if (s.temperature >= 0) p.temperature = float(s.temperature);
  if (s.top_p > 0) p.top_p = float(s.top_p);
  if (s.top_k >= 0) p.top_k = int(s.top_k);
  if (s.min_p >= 0) p.min_p = float(s.min_p);
  if (s.repetition_penalty > 0) p.repetition_penalty = float(s.repetition_penalty);
  p.presence_penalty = float(s.presence_penalty);
  p.frequency_penalty = float(s.frequency_penalty);
  p.seed = s.has_seed ? s.seed : (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
  g.max_tokens = s.max_tokens;
  g.stop_strings = s.stop;
  g.stop_ids = ref.stop_ids();
  g.prompt = std::move(prompt);
  return g;
}

}  // namespace brisk::server
