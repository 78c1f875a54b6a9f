// `brisk init-model OUT_DIR --arch A --preset P`: a HF model folder with random weights.
#include <cstdio>

#include "cli/commands.h"
#include "core/arena.h"
#include "model/init_model.h"
#include "model/weights.h"

namespace {
brisk::cli::Registrar reg("init-model", "Write a HF model folder with deterministic random weights", [](CLI::App& app) {
  struct Args {
    std::string out, tie;
    brisk::InitModelOptions o;
  };
  auto a = std::make_shared<Args>();
  app.add_option("OUT_DIR", a->out, "Folder to create")->required();
  app.add_option("--arch", a->o.arch, "llama, mistral, qwen2 or qwen3")->required();
  app.add_option("--preset", a->o.preset, "tiny, small, 1b (Llama-3.2-1B shape) or 8b (Llama-3.1-8B shape)")->required();
  app.add_option("--seed", a->o.seed, "Random seed (same seed, same bytes)");
  app.add_option("--tokenizer", a->o.tokenizer_dir, "Copy tokenizer files from this folder (sets the vocab size)");
  app.add_option("--dtype", a->o.dtype, "f32 or bf16")->default_val("f32");
  app.add_option("--tie", a->tie, "Tie embeddings: yes or no (default: preset's)");
  app.add_option("--rope-scaling", a->o.rope_scaling, "none, linear, llama3 or yarn (default: llama3 for llama)");
  app.add_option("--sliding-window", a->o.sliding_window, "Sliding-window size (0 = none)");
  return [a]() -> int {
    if (!a->tie.empty()) {
      BRISK_CHECK(a->tie == "yes" || a->tie == "no", "--tie takes yes or no, not \"", a->tie, "\"");
      a->o.tie = a->tie == "yes";
    }
    brisk::ModelConfig c = brisk::init_model(a->out, a->o);
    std::printf("wrote %s: %s %s, %.1fM parameters, vocab %lld\n", a->out.c_str(), c.model_type.c_str(),
                a->o.preset.c_str(), double(brisk::parameter_count(c)) / 1e6, (long long)c.vocab_size);
    return 0;
  };
});
}  // namespace
