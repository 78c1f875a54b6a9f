#include "text/chat_template.h"

#include "core/error.h"
#include "core/fs.h"
#include "text/jinja/template.h"

namespace brisk::text {

using json = nlohmann::ordered_json;

std::optional<ChatTemplateSource> find_chat_template(const std::string& model_dir, bool has_tools) {
  std::string jinja_path = path_join(model_dir, "chat_template.jinja");
  if (file_exists(jinja_path)) return ChatTemplateSource{read_file(jinja_path), "chat_template.jinja"};
  std::string cfg_path = path_join(model_dir, "tokenizer_config.json");
  if (!file_exists(cfg_path)) return std::nullopt;
  json cfg;
  try {
    cfg = json::parse(read_file(cfg_path));
  } catch (const json::exception& e) {
    throw Error(cat(cfg_path, ": invalid JSON: ", e.what()));
  }
  if (!cfg.is_object() || !cfg.contains("chat_template") || cfg["chat_template"].is_null()) return std::nullopt;
  const json& ct = cfg["chat_template"];
  if (ct.is_string()) return ChatTemplateSource{ct.get<std::string>(), "tokenizer_config.json"};
  if (!ct.is_array()) throw Error(cat(cfg_path, ": \"chat_template\" must be a string or a list of {name, template}"));
  std::optional<std::string> def, tool_use;
  for (const json& entry : ct) {
    if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") || !entry["name"].is_string() ||
        !entry["template"].is_string())
      throw Error(cat(cfg_path, ": each \"chat_template\" entry needs string \"name\" and \"template\""));
    std::string name = entry["name"].get<std::string>();
    if (name == "default") def = entry["template"].get<std::string>();
    if (name == "tool_use") tool_use = entry["template"].get<std::string>();
  }
  std::string origin = "tokenizer_config.json";
  if (has_tools && tool_use) return ChatTemplateSource{*tool_use, origin + " (tool_use)"};
  if (def) return ChatTemplateSource{*def, origin};
  return std::nullopt;
}

std::string special_token_text(const json& cfg, const std::string& key) {
  if (!cfg.is_object() || !cfg.contains(key)) return "";
  const json& t = cfg[key];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content") && t["content"].is_string()) return t["content"].get<std::string>();
  return "";
}

namespace {
// "chat template line 12: ..." for located errors, "chat template: ..." otherwise.
template <typename Fn>
auto located(const std::string& origin, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    std::string msg = e.what();
    throw Error(origin + (msg.rfind("line ", 0) == 0 ? " " : ": ") + msg);
  }
}
}  // namespace

ChatTemplate::ChatTemplate(std::string source, std::string origin) : origin_(std::move(origin)) {
  located(origin_, [&] { tmpl_ = std::make_unique<jinja::Template>(source); });
}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const json& messages, const json& tools, bool add_generation_prompt,
                                 const std::string& bos_token, const std::string& eos_token, const json& extra) const {
  if (!messages.is_array()) throw Error(cat("messages must be a JSON array of message objects, got ", messages.type_name()));
  for (size_t i = 0; i < messages.size(); ++i)
    if (!messages[i].is_object())
      throw Error(cat("messages[", i, "] must be an object like {\"role\": ..., \"content\": ...}, got ",
                      messages[i].type_name()));
  if (!tools.is_null() && !tools.is_array()) throw Error(cat("tools must be a JSON array or null, got ", tools.type_name()));
  if (!extra.is_object()) throw Error("extra template variables must be a JSON object");

  // The variables transformers passes: messages, tools (None when absent), documents (None),
  // add_generation_prompt, the special tokens, then the caller's kwargs (which may override).
  using jinja::Value;
  Value vars = Value::make_dict();
  auto set = [&](const std::string& k, Value v) { vars.dict->set(Value::string(k), std::move(v)); };
  set("messages", jinja::from_json(messages));
  set("tools", jinja::from_json(tools));
  set("documents", Value::none());
  set("add_generation_prompt", Value::boolean(add_generation_prompt));
  set("bos_token", Value::string(bos_token));
  set("eos_token", Value::string(eos_token));
  for (auto& [k, v] : extra.items()) set(k, jinja::from_json(v));
  return located(origin_, [&] { return tmpl_->render(vars); });
}

}  // namespace brisk::text
