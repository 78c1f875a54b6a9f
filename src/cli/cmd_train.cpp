// `brisk train CONFIG.yaml [--set key=value]... [--resume [CHECKPOINT]]`: fine-tunes a model.
#include <cstdio>

#include "cli/commands.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace {
brisk::cli::Registrar reg("train", "Fine-tune a model (LoRA or full) from a YAML config", [](CLI::App& app) {
  struct Args {
    std::string config;
    std::vector<std::string> sets;
    brisk::train::TrainerOptions opt;
    std::string resume;
  };
  auto a = std::make_shared<Args>();
  app.add_option("CONFIG", a->config, "Training config (YAML or JSON; see docs/TRAINING.md)")->required();
  app.add_option("--set", a->sets, "Override a config key: key=value or section.key=value (repeatable)");
  auto* r = app.add_option("--resume", a->resume, "Continue from the newest checkpoint in output_dir, or from CHECKPOINT")
                ->expected(0, 1);
  app.add_option("--events", a->opt.events_path, "Append JSON-line progress events to this file");
  app.add_option("--events-fd", a->opt.events_fd, "Write JSON-line progress events to this file descriptor");
  app.add_flag("--quiet", a->opt.quiet, "No progress line");
  return [a, r]() -> int {
    using namespace brisk::train;
    TrainConfig cfg = load_train_config(a->config);
    for (const std::string& s : a->sets) apply_override(cfg, s);
    a->opt.resume = r->count() > 0;
    a->opt.resume_from = a->resume;
    TrainOutcome out = run_training(cfg, a->opt);
    return out == TrainOutcome::Completed ? 0 : 130;
  };
});
}  // namespace
