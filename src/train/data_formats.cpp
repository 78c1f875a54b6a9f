// Row formats: detection from keys and conversion to text or messages (see data_formats.h).
#include "train/data_formats.h"

#include <algorithm>

#include "core/error.h"

namespace brisk::train {
namespace {

using ojson = nlohmann::ordered_json;

const char* kFormatKeys =
    "text {\"text\"}, alpaca {\"instruction\", \"output\", \"input\"?, \"system\"?}, sharegpt {\"conversations\": "
    "[{\"from\", \"value\"}]}, messages {\"messages\": [{\"role\", \"content\"}]}, prompt_completion {\"prompt\", "
    "\"completion\"}";

const ojson& required(const ojson& row, const std::string& key) {
  auto it = row.find(key);
  BRISK_CHECK(it != row.end() && !it->is_null(), "missing field '", key, "'");
  return *it;
}

std::string required_string(const ojson& row, const std::string& key) {
  const ojson& v = required(row, key);
  BRISK_CHECK(v.is_string(), "field '", key, "' must be a string, got ", v.type_name());
  return v.get<std::string>();
}

// Absent or null -> "".
std::string optional_string(const ojson& row, const std::string& key) {
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) return "";
  BRISK_CHECK(it->is_string(), "field '", key, "' must be a string, got ", it->type_name());
  return it->get<std::string>();
}

bool is_known_role(const std::string& role) {
  return role == "system" || role == "developer" || role == "user" || role == "assistant" || role == "tool";
}

// Checks one OpenAI-style message and returns it unchanged (extra keys such as tool_calls,
// name or reasoning_content pass through to the template).
ojson checked_message(const ojson& m, const std::string& where) {
  BRISK_CHECK(m.is_object(), where, ": expected an object, got ", m.type_name());
  auto role = m.find("role");
  BRISK_CHECK(role != m.end(), where, ": missing field 'role'");
  BRISK_CHECK(role->is_string(), where, ": field 'role' must be a string, got ", role->type_name());
  const std::string r = role->get<std::string>();
  BRISK_CHECK(is_known_role(r), where, ": unknown role '", r, "' (expected system, developer, user, assistant or tool)");
  auto content = m.find("content");
  const bool has_tool_calls = m.contains("tool_calls") && !m["tool_calls"].is_null();
  if (content == m.end() || content->is_null()) {
    BRISK_CHECK(r == "assistant" && has_tool_calls, where, ": missing field 'content'");
  } else {
    BRISK_CHECK(content->is_string(), where, ": field 'content' must be a string, got ", content->type_name());
  }
  return m;
}

ojson checked_message_list(const ojson& list, const std::string& key) {
  BRISK_CHECK(list.is_array(), "field '", key, "' must be a list of messages, got ", list.type_name());
  ojson out = ojson::array();
  for (size_t i = 0; i < list.size(); ++i) out.push_back(checked_message(list[i], cat(key, "[", i, "]")));
  return out;
}

std::string sharegpt_role(const std::string& from, const std::string& where) {
  if (from == "human" || from == "user") return "user";
  if (from == "gpt" || from == "assistant" || from == "model") return "assistant";
  if (from == "system") return "system";
  if (from == "tool" || from == "function" || from == "observation") return "tool";
  throw Error(cat(where, ": unknown role '", from, "' (expected human, gpt, system or tool)"));
}

ojson sharegpt_messages(const ojson& row) {
  const ojson& conv = required(row, "conversations");
  BRISK_CHECK(conv.is_array(), "field 'conversations' must be a list, got ", conv.type_name());
  ojson out = ojson::array();
  for (size_t i = 0; i < conv.size(); ++i) {
    const std::string where = cat("conversations[", i, "]");
    const ojson& turn = conv[i];
    BRISK_CHECK(turn.is_object(), where, ": expected an object, got ", turn.type_name());
    if (!turn.contains("from") && turn.contains("role")) {  // already OpenAI-shaped
      out.push_back(checked_message(turn, where));
      continue;
    }
    auto from = turn.find("from");
    BRISK_CHECK(from != turn.end(), where, ": missing field 'from'");
    BRISK_CHECK(from->is_string(), where, ": field 'from' must be a string, got ", from->type_name());
    auto value = turn.find("value");
    BRISK_CHECK(value != turn.end() && !value->is_null(), where, ": missing field 'value'");
    BRISK_CHECK(value->is_string(), where, ": field 'value' must be a string, got ", value->type_name());
    out.push_back({{"role", sharegpt_role(from->get<std::string>(), where)}, {"content", *value}});
  }
  return out;
}

// Training needs something to learn: a non-empty conversation that ends with the assistant.
void check_trainable(const ojson& messages) {
  BRISK_CHECK(!messages.empty(), "empty conversation");
  const std::string last = messages.back()["role"].get<std::string>();
  BRISK_CHECK(last == "assistant", "conversation ends with a '", last, "' turn, not an assistant turn");
}

// The conversational formats a row's keys fit.
std::vector<std::string> structured_candidates(const ojson& row) {
  std::vector<std::string> c;
  if (row.contains("messages")) c.push_back("messages");
  if (row.contains("conversations")) c.push_back("sharegpt");
  if (row.contains("instruction") && row.contains("output")) c.push_back("alpaca");
  if (row.contains("prompt") && row.contains("completion")) c.push_back("prompt_completion");
  return c;
}

std::string keys_of(const ojson& row) {
  std::string s;
  for (auto& [k, v] : row.items()) s += (s.empty() ? "" : ", ") + k;
  return s.empty() ? "none" : s;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

void check_format_name(const std::string& format) {
  if (format == "auto") return;
  for (const char* name : kFormatNames)
    if (format == name) return;
  throw Error(cat("unknown dataset format '", format,
                  "' (expected auto, text, alpaca, sharegpt, messages or prompt_completion)"));
}

std::string alpaca_prompt(const std::string& instruction, const std::string& input, const std::string& system) {
  std::string preamble = !system.empty() ? system
                         : input.empty()
                             ? "Below is an instruction that describes a task. Write a response that appropriately "
                               "completes the request."
                             : "Below is an instruction that describes a task, paired with an input that provides "
                               "further context. Write a response that appropriately completes the request.";
  std::string p = preamble + "\n\n### Instruction:\n" + instruction + "\n\n";
  if (!input.empty()) p += "### Input:\n" + input + "\n\n";
  return p + "### Response:\n";
}

ParsedRow parse_row(const ojson& row, const std::string& format, const std::string& text_field) {
  check_format_name(format);
  BRISK_CHECK(format != "auto", "parse_row needs a resolved format, not 'auto'");
  ParsedRow out;
  if (format == "text") {
    out.is_text = true;
    out.text = required_string(row, text_field);
    BRISK_CHECK(!out.text.empty(), "field '", text_field, "' is empty");
    return out;
  }
  if (format == "alpaca") {
    std::string instruction = required_string(row, "instruction");
    std::string input = optional_string(row, "input");
    std::string output = required_string(row, "output");
    std::string system = optional_string(row, "system");
    out.messages = ojson::array();
    if (!system.empty()) out.messages.push_back({{"role", "system"}, {"content", system}});
    out.messages.push_back({{"role", "user"}, {"content", input.empty() ? instruction : instruction + "\n\n" + input}});
    out.messages.push_back({{"role", "assistant"}, {"content", output}});
    out.has_plain = true;
    out.plain_prompt = alpaca_prompt(instruction, input, system);
    out.plain_response = output;
  } else if (format == "sharegpt") {
    out.messages = sharegpt_messages(row);
  } else if (format == "messages") {
    out.messages = checked_message_list(required(row, "messages"), "messages");
    if (auto tools = row.find("tools"); tools != row.end() && !tools->is_null()) {
      BRISK_CHECK(tools->is_array(), "field 'tools' must be a list, got ", tools->type_name());
      if (!tools->empty()) out.tools = *tools;
    }
  } else {  // prompt_completion
    const ojson& prompt = required(row, "prompt");
    const ojson& completion = required(row, "completion");
    if (prompt.is_string() && completion.is_string()) {
      out.messages = ojson::array({ojson{{"role", "user"}, {"content", prompt}},
                                   ojson{{"role", "assistant"}, {"content", completion}}});
      out.has_plain = true;
      out.plain_prompt = prompt.get<std::string>();
      out.plain_response = completion.get<std::string>();
    } else {
      BRISK_CHECK(prompt.is_array() && completion.is_array(),
                  "'prompt' and 'completion' must both be strings or both be message lists (got ", prompt.type_name(),
                  " and ", completion.type_name(), ")");
      out.messages = checked_message_list(prompt, "prompt");
      out.first_trained_message = out.messages.size();
      for (auto& m : checked_message_list(completion, "completion")) out.messages.push_back(m);
      BRISK_CHECK(out.messages.size() > out.first_trained_message, "field 'completion' is an empty list");
    }
  }
  check_trainable(out.messages);
  return out;
}

std::string detect_format_of(const std::vector<ojson>& rows, const std::string& text_field) {
  BRISK_CHECK(!rows.empty(), "cannot detect the dataset format: no rows");
  // A row whose keys fit no format (a missing field) does not decide anything: it is reported
  // as a row problem under the format the other rows show.
  const size_t n = std::min<size_t>(rows.size(), 16);
  std::string detected;
  size_t detected_row = 0;
  bool preference = false;
  for (size_t i = 0; i < n; ++i) {
    const ojson& row = rows[i];
    std::vector<std::string> c = structured_candidates(row);
    if (c.empty() && row.contains(text_field)) c.push_back("text");
    preference |= row.contains("chosen") && row.contains("rejected");
    if (c.empty()) continue;
    if (c.size() > 1)
      throw Error(cat("row ", i + 1, " fits several dataset formats (", joined(c), "; keys: ", keys_of(row),
                      "); set dataset.format to the one you mean"));
    if (detected.empty()) {
      detected = c[0];
      detected_row = i;
    }
    BRISK_CHECK(detected == c[0], "rows disagree on the dataset format: row ", detected_row + 1, " is ", detected,
                ", row ", i + 1, " is ", c[0], " (keys: ", keys_of(row), ")");
  }
  if (detected.empty() && preference)
    throw Error(cat("the rows look like a preference dataset (\"chosen\"/\"rejected\": DPO/ORPO), which supervised "
                    "fine-tuning does not use; expected one of: ", kFormatKeys));
  BRISK_CHECK(!detected.empty(), "cannot detect the dataset format from the keys of the first ", n,
              " rows (row 1 keys: ", keys_of(rows[0]), "); set dataset.format to one of: ", kFormatKeys);
  return detected;
}

}  // namespace brisk::train
