// `brisk tokenize MODEL_DIR [--no-special]`: UTF-8 text on stdin -> one JSON array of ids.
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "text/tokenizer.h"

namespace {
brisk::cli::Registrar reg("tokenize", "Encode stdin text to token ids (JSON array)", [](CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  auto no_special = std::make_shared<bool>(false);
  app.add_option("MODEL_DIR", *dir, "Folder with tokenizer.json (and tokenizer_config.json)")->required();
  app.add_flag("--no-special", *no_special, "Do not add BOS/EOS (add_special_tokens=False)");
  return [dir, no_special]() -> int {
    auto tok = brisk::text::Tokenizer::load(*dir);
    std::string text = brisk::cli::read_stdin();
    std::vector<int32_t> ids = brisk::with_context("stdin", [&] { return tok.encode(text, !*no_special); });
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ",";
      out += std::to_string(ids[i]);
    }
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  };
});
}  // namespace
