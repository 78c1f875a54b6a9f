// Chat templates: find a model's Jinja chat template and render conversations exactly as
// transformers' apply_chat_template(..., tokenize=False) does.
//
// Known differences from Hugging Face (CPython + Jinja2): upper/lower/title/capitalize change
// ASCII letters only; str.isalpha()/isdigit() and friends treat non-ASCII as non-matching.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace brisk::text {

namespace jinja { class Template; }

struct ChatTemplateSource {
  std::string text;
  std::string origin;  // "chat_template.jinja" or "tokenizer_config.json"
};

// Lookup order: MODEL_DIR/chat_template.jinja > tokenizer_config.json "chat_template" (a string,
// or a list of {"name","template"}: "default", or "tool_use" when tools are given and that entry
// exists). nullopt when there is none. Malformed files: brisk::Error naming the file.
std::optional<ChatTemplateSource> find_chat_template(const std::string& model_dir, bool has_tools);

// A special token from tokenizer_config.json: a string, an AddedToken dict {"content": ...},
// or missing/null -> "".
std::string special_token_text(const nlohmann::ordered_json& tokenizer_config, const std::string& key);

class ChatTemplate {
 public:
  // Parses; syntax errors -> brisk::Error "<origin> line N: ...".
  explicit ChatTemplate(std::string source, std::string origin = "chat template");
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // messages: JSON array of message objects (OpenAI shape), passed to the template as given.
  // tools: JSON array or null (the template sees `tools` = None then, as in transformers).
  // extra: JSON object of extra variables (enable_thinking, date_string, ...).
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                     bool add_generation_prompt, const std::string& bos_token, const std::string& eos_token,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
  std::unique_ptr<jinja::Template> tmpl_;
};

}  // namespace brisk::text
