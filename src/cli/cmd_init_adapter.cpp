// `brisk init-adapter MODEL_DIR OUT_DIR`: a fresh PEFT LoRA adapter for a model (as PEFT
// initialises one, or with a random B for gradient tests).
#include <cstdio>

#include "cli/commands.h"
#include "io/hf_config.h"
#include "model/lora.h"

namespace {
brisk::cli::Registrar reg("init-adapter", "Write a freshly initialised PEFT LoRA adapter for a model", [](CLI::App& app) {
  struct Args {
    std::string model, out;
    brisk::LoraSpec spec;
    std::vector<std::string> targets{"all-linear"};
    uint64_t seed = 0;
    bool random_b = false;
  };
  auto a = std::make_shared<Args>();
  app.add_option("MODEL_DIR", a->model, "Base model folder")->required();
  app.add_option("OUT_DIR", a->out, "Adapter folder to write")->required();
  app.add_option("--r", a->spec.r, "LoRA rank")->default_val(16);
  app.add_option("--alpha", a->spec.alpha, "LoRA alpha")->default_val(16);
  app.add_flag("--rslora", a->spec.rslora, "Scale by alpha/sqrt(r)");
  app.add_option("--targets", a->targets, "Target modules (names or all-linear)");
  app.add_option("--seed", a->seed, "Random seed");
  app.add_flag("--random-b", a->random_b, "Random B instead of zeros (for gradient tests)");
  return [a]() -> int {
    using namespace brisk;
    ModelConfig cfg = io::load_model_config(a->model);
    a->spec.targets = parse_target_modules(a->targets);
    LoraAdapter ad = init_lora(cfg, a->spec, a->seed, a->random_b);
    save_peft_adapter(ad, cfg, a->out, a->model);
    std::printf("wrote %s: LoRA r=%d alpha=%g, %lld parameters\n", a->out.c_str(), a->spec.r, a->spec.alpha,
                (long long)ad.parameter_count());
    return 0;
  };
});
}  // namespace
