// `brisk chat MODEL_DIR`: interactive multi-turn chat through the model's chat template.
// Reads one user message per line from stdin; `/reset` clears the conversation, `/exit` (or
// end of input) quits. Replies stream to stdout.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_session.h"

namespace {
brisk::cli::Registrar reg("chat", "Interactive multi-turn chat (one message per line on stdin)", [](CLI::App& app) {
  auto a = std::make_shared<brisk::cli::GenerateArgs>();
  auto system = std::make_shared<std::string>();
  app.add_option("MODEL_DIR", a->model_dir, "Hugging Face model folder")->required();
  app.add_option("--system", *system, "System prompt");
  a->add_sampling_flags(app);
  return [a, system]() -> int {
    using namespace brisk;
    cli::ModelSession s = cli::ModelSession::open(a->model_dir, a->adapter_dir);
    BRISK_CHECK(s.chat_template, a->model_dir, " has no chat template; use `brisk generate --raw`");
    infer::GenerateOptions opt = s.generate_options(*a);
    if (a->ctx <= 0) opt.context = std::min<int64_t>(s.model->config().max_position_embeddings, 8192);
    std::unique_ptr<infer::Decoder> dec = s.decoder(a->device);
    const bool tty = ::isatty(STDIN_FILENO);
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    auto reset = [&] {
      messages = nlohmann::ordered_json::array();
      if (!system->empty()) messages.push_back({{"role", "system"}, {"content", *system}});
    };
    reset();
    std::string line;
    for (;;) {
      if (tty) std::fputs("> ", stdout), std::fflush(stdout);
      if (!std::getline(std::cin, line) || line == "/exit") break;
      if (line == "/reset") {
        reset();
        continue;
      }
      if (line.empty()) continue;
      messages.push_back({{"role", "user"}, {"content", line}});
      std::vector<int32_t> ids = s.chat_prompt_ids(messages, a->template_vars);
      BRISK_CHECK(int64_t(ids.size()) < opt.context, "conversation of ", ids.size(),
                  " tokens no longer fits the context of ", opt.context, " (use /reset or --ctx)");
      infer::GenerateOptions turn = opt;
      turn.max_tokens = std::min<int64_t>(opt.max_tokens, opt.context - int64_t(ids.size()));
      infer::GenerateResult r = infer::generate(*dec, s.tokenizer.get(), ids, turn, [](const std::string& t) {
        std::fwrite(t.data(), 1, t.size(), stdout);
        std::fflush(stdout);
      });
      std::fputs("\n", stdout);
      std::fflush(stdout);
      messages.push_back({{"role", "assistant"}, {"content", r.text}});
    }
    return 0;
  };
});
}  // namespace
