// `brisk generate MODEL_DIR --prompt TEXT`: streams a completion to stdout.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_session.h"
#include "infer/generate.h"

namespace {
brisk::cli::Registrar reg("generate", "Generate a completion for a prompt (streams to stdout)", [](CLI::App& app) {
  auto a = std::make_shared<brisk::cli::GenerateArgs>();
  app.add_option("MODEL_DIR", a->model_dir, "Hugging Face model folder")->required();
  auto* prompt = app.add_option("--prompt", a->prompt, "Prompt text (a user message unless --raw)");
  auto* ids = app.add_option("--prompt-ids", a->prompt_ids_json, "Prompt as a JSON array of token ids (implies --raw)");
  prompt->excludes(ids);
  app.add_flag("--raw", a->raw, "Use the prompt as is (no chat template)");
  a->add_sampling_flags(app);
  app.add_flag("--json", a->json, "Print one JSON object instead of streaming text");
  return [a]() -> int {
    using namespace brisk;
    BRISK_CHECK(!a->prompt.empty() || !a->prompt_ids_json.empty(), "give --prompt TEXT or --prompt-ids JSON");
    cli::ModelSession s = cli::ModelSession::open(a->model_dir, a->adapter_dir);
    std::vector<int32_t> prompt_ids = s.prompt_ids(*a);
    infer::GenerateOptions opt = s.generate_options(*a);
    std::function<void(const std::string&)> stream;
    if (!a->json)
      stream = [](const std::string& t) {
        std::fwrite(t.data(), 1, t.size(), stdout);
        std::fflush(stdout);
      };
    std::unique_ptr<infer::Decoder> dec = s.decoder(a->device);
    infer::GenerateResult r = infer::generate(*dec, s.tokenizer.get(), prompt_ids, opt, stream);
    if (a->json) {
      nlohmann::json j = {{"prompt_ids", prompt_ids}, {"ids", r.ids}, {"text", r.text}, {"finish_reason", r.finish_reason}};
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::printf("\n");
    }
    return 0;
  };
});
}  // namespace
