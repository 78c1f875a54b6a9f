// `brisk bench decode MODEL_DIR`: prompt-processing and decode throughput, one JSON line.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "infer/sampler.h"
#include "model/model.h"

namespace {
brisk::cli::Registrar reg("bench decode", "Prompt and decode tokens/s (batch 1, greedy)", [](CLI::App& app) {
  struct Args {
    std::string dir, device = "cpu";
    int64_t prompt = 128, gen = 32;
    int repeat = 1;
  };
  auto a = std::make_shared<Args>();
  app.add_option("MODEL_DIR", a->dir, "Hugging Face model folder")->required();
  app.add_option("--prompt-tokens", a->prompt, "Prompt length")->default_val(128);
  app.add_option("--gen-tokens", a->gen, "Tokens to decode")->default_val(32);
  app.add_option("--repeat", a->repeat, "Runs (the best is reported)")->default_val(1);
  app.add_option("--device", a->device, "cpu")->default_val("cpu");
  return [a]() -> int {
    using namespace brisk;
    using clock = std::chrono::steady_clock;
    BRISK_CHECK(a->device == "cpu", "--device ", a->device, ": only cpu is available in this build");
    BRISK_CHECK(a->prompt >= 1 && a->gen >= 1 && a->repeat >= 1, "--prompt-tokens, --gen-tokens and --repeat must be >= 1");
    auto load0 = clock::now();
    auto model = Model::load(a->dir);
    double load_s = std::chrono::duration<double>(clock::now() - load0).count();
    const ModelConfig& c = model->config();
    Rng rng(42);
    std::vector<int32_t> prompt(size_t(a->prompt));
    for (auto& t : prompt) t = int32_t(rng.below(uint64_t(c.vocab_size)));
    model->set_max_batch_tokens(a->prompt);
    double best_pp = 0, best_tg = 0;
    for (int r = 0; r < a->repeat; ++r) {
      KVCache cache(c, 1, a->prompt + a->gen);
      auto t0 = clock::now();
      Tensor logits = model->forward({SeqChunk{0, prompt, false}}, cache);
      double pp = std::chrono::duration<double>(clock::now() - t0).count();
      infer::SamplingParams sp;
      sp.temperature = 0.0f;
      infer::Sampler greedy(sp);
      std::vector<int32_t> hist = prompt;
      auto t1 = clock::now();
      for (int64_t i = 0; i < a->gen; ++i) {
        int32_t id = greedy.sample(logits.f32(), c.vocab_size, hist);
        hist.push_back(id);
        logits = model->forward({SeqChunk{0, {id}, false}}, cache);
      }
      double tg = std::chrono::duration<double>(clock::now() - t1).count();
      best_pp = std::max(best_pp, double(a->prompt) / pp);
      best_tg = std::max(best_tg, double(a->gen) / tg);
    }
    nlohmann::json j = {{"bench", "decode"}, {"model", a->dir}, {"device", a->device},
                        {"threads", num_threads()}, {"params", parameter_count(c)},
                        {"prompt_tokens", a->prompt}, {"gen_tokens", a->gen},
                        {"prompt_tok_s", best_pp}, {"decode_tok_s", best_tg}, {"load_s", load_s}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  };
});
}  // namespace
