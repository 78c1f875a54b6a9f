// `brisk detokenize MODEL_DIR [--skip-special]`: JSON array of ids on stdin -> text (no newline).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "text/tokenizer.h"

namespace {
brisk::cli::Registrar reg("detokenize", "Decode a JSON array of token ids from stdin to text", [](CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  auto skip_special = std::make_shared<bool>(false);
  app.add_option("MODEL_DIR", *dir, "Folder with tokenizer.json (and tokenizer_config.json)")->required();
  app.add_flag("--skip-special", *skip_special, "Drop special tokens (skip_special_tokens=True)");
  return [dir, skip_special]() -> int {
    auto tok = brisk::text::Tokenizer::load(*dir);
    std::string input = brisk::cli::read_stdin();
    auto j = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
    BRISK_CHECK(!j.is_discarded() && j.is_array(), "stdin: expected a JSON array of token ids");
    std::vector<int32_t> ids;
    ids.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
      BRISK_CHECK(j[i].is_number_integer(), "stdin: element ", i, " is not an integer token id");
      int64_t id = j[i].get<int64_t>();
      BRISK_CHECK(id >= 0 && id < tok.vocab_size(), "stdin: token id ", id, " at index ", i,
                  " is out of range (vocabulary size ", tok.vocab_size(), ")");
      ids.push_back(static_cast<int32_t>(id));
    }
    std::string text = tok.decode(ids, *skip_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  };
});
}  // namespace
