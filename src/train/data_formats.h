// Dataset row formats: recognising them from their keys and converting a row to what the
// tokenizer stage needs (plain text, or an OpenAI-style conversation).
//
//   text               {"text": "..."}            (the key is DatasetConfig::text_field)
//   alpaca             {"instruction", "input"?, "output", "system"?}
//   sharegpt           {"conversations": [{"from": "human"|"gpt"|"system"|"tool", "value"}]}
//                      (items in {"role", "content"} shape are accepted too)
//   messages           {"messages": [{"role", "content", ...}], "tools"?}
//   prompt_completion  {"prompt", "completion"}: two strings, or two message lists
//
// Detection (format "auto") looks at the keys of the first rows. The conversational shapes win
// over `text` (the Stanford alpaca dump has both "instruction"/"output" and a pre-formatted
// "text"); two conversational shapes in one row, or rows that disagree, are an error. Rows
// that fit no format are left to be reported as row problems (usually a missing field).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace brisk::train {

inline constexpr const char* kFormatNames[] = {"text", "alpaca", "sharegpt", "messages", "prompt_completion"};

// One row in the form the tokenizer stage consumes.
struct ParsedRow {
  bool is_text = false;
  std::string text;                  // format text
  nlohmann::ordered_json messages;   // chat formats: [{"role", "content", ...}], ends with an assistant turn
  nlohmann::ordered_json tools;      // null or the row's "tools" array (messages format)
  size_t first_trained_message = 0;  // assistant turns before this index are context, not targets
  // For models without a chat template: alpaca rows and string prompt/completion rows become
  // prompt text + response text (alpaca: the Stanford prompt).
  bool has_plain = false;
  std::string plain_prompt, plain_response;
};

// Throws brisk::Error with the reason ("missing field 'output'", "conversations[2]: unknown
// role 'bot' (expected human, gpt, system or tool)", ...): the caller adds the row's place.
ParsedRow parse_row(const nlohmann::ordered_json& row, const std::string& format, const std::string& text_field = "text");

// Resolves "auto" from the first rows (see above); throws naming the formats and their keys.
std::string detect_format_of(const std::vector<nlohmann::ordered_json>& rows, const std::string& text_field = "text");

// Throws for a name that is not "auto" or one of kFormatNames.
void check_format_name(const std::string& format);

// The Stanford alpaca prompt (everything before the response). A non-empty `system` replaces
// the standard preamble sentence, which is what the preamble is.
std::string alpaca_prompt(const std::string& instruction, const std::string& input, const std::string& system);

}  // namespace brisk::train
