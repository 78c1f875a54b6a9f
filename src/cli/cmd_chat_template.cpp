// `brisk chat-template MODEL_DIR --messages FILE [--tools FILE] [--add-generation-prompt]
//  [--set KEY=JSON]...`: prints the rendered prompt exactly (no added newline).
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "text/chat_template.h"

namespace {

using json = nlohmann::ordered_json;

json read_json_file(const std::string& path, const char* what) {
  std::string text = brisk::read_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw brisk::Error(brisk::cat(what, " file ", path, ": invalid JSON: ", e.what()));
  }
}

struct Options {
  std::string model_dir, messages_file, tools_file;
  bool add_generation_prompt = false;
  std::vector<std::string> sets;
};

brisk::cli::Registrar reg("chat-template", "Render a chat with a model's chat template", [](CLI::App& app) {
  auto o = std::make_shared<Options>();
  app.add_option("model_dir", o->model_dir, "Folder with tokenizer_config.json (and maybe chat_template.jinja)")->required();
  app.add_option("--messages", o->messages_file, "JSON file: array of messages")->required();
  app.add_option("--tools", o->tools_file, "JSON file: array of tool definitions");
  app.add_flag("--add-generation-prompt", o->add_generation_prompt, "Append the assistant turn opener");
  app.add_option("--set", o->sets, "Extra template variable KEY=JSON (a plain string if not JSON)");
  return [o]() -> int {
    json messages = read_json_file(o->messages_file, "messages");
    json tools = o->tools_file.empty() ? json() : read_json_file(o->tools_file, "tools");
    json extra = json::object();
    for (const std::string& kv : o->sets) {
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) throw brisk::Error(brisk::cat("--set expects KEY=VALUE, got '", kv, "'"));
      std::string value = kv.substr(eq + 1);
      json parsed = json::parse(value, nullptr, /*allow_exceptions=*/false);
      extra[kv.substr(0, eq)] = parsed.is_discarded() ? json(value) : parsed;
    }
    bool has_tools = tools.is_array() && !tools.empty();
    auto source = brisk::text::find_chat_template(o->model_dir, has_tools);
    if (!source)
      throw brisk::Error(brisk::cat(o->model_dir, ": no chat template (no chat_template.jinja and no \"chat_template\" in tokenizer_config.json)"));
    json cfg;
    std::string cfg_path = brisk::path_join(o->model_dir, "tokenizer_config.json");
    if (brisk::file_exists(cfg_path)) cfg = read_json_file(cfg_path, "tokenizer config");
    brisk::text::ChatTemplate tmpl(source->text, source->origin);
    std::string out = tmpl.render(messages, tools, o->add_generation_prompt, brisk::text::special_token_text(cfg, "bos_token"),
                                  brisk::text::special_token_text(cfg, "eos_token"), extra);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  };
});

}  // namespace
