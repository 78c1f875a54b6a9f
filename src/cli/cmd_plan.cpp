// `brisk plan CONFIG.yaml`: the GPU memory a training job will use (weights, LoRA parameters,
// gradients, optimizer state, activations per recompute policy, workspace) next to the
// device's free memory, computed from config.json and the training config alone (no weights
// are read). `brisk train` runs the same plan and refuses to start when it does not fit.
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "io/hf_config.h"
#include "model/train_memory.h"
#include "train/train_config.h"
#include "train/train_engine.h"
#ifdef BRISK_HAVE_CUDA
#include "backend/cuda/device_info.h"
#endif

namespace {
brisk::cli::Registrar reg("plan", "GPU memory plan of a training config, and whether it fits", [](CLI::App& app) {
  struct Args {
    std::string config;
    std::vector<std::string> sets;
  };
  auto a = std::make_shared<Args>();
  app.add_option("config", a->config, "Training config (YAML or JSON)")->required();
  app.add_option("--set", a->sets, "Override a key: --set key=value (repeatable)");
  return [a]() -> int {
    using namespace brisk;
    train::TrainConfig cfg = train::load_train_config(a->config);
    for (const auto& s : a->sets) train::apply_override(cfg, s);
    BRISK_CHECK(!cfg.base_model.empty(), a->config, ": base_model is not set");
    ModelConfig mc = io::load_model_config(cfg.base_model);
    // Upper bound: every micro-batch as long as max_seq_length allows (training plans for the
    // longest row the dataset actually has, which is at most this).
    const int64_t tokens = cfg.batch_size * cfg.max_seq_length;
    TrainShape shape = train::train_shape(cfg, mc, tokens);
    TrainMemoryPlan plan = plan_train_memory(mc, shape);
    std::printf("memory plan for %s (%s, %s, batch %lld x %lld tokens):\n%s", a->config.c_str(),
                mc.model_type.c_str(), cfg.method.c_str(), (long long)cfg.batch_size, (long long)cfg.max_seq_length,
                plan.table().c_str());
#ifdef BRISK_HAVE_CUDA
    const double gib = double(1ull << 30);
    auto devs = cuda::list_devices();
    if (devs.empty()) {
      std::printf("device: no CUDA device here\n");
      return 0;
    }
    const auto& d = devs.front();
    const bool fits = plan.total() <= d.free_bytes;
    std::printf("device: cuda:%d %s, %.2f GiB free of %.2f GiB: %s\n", d.index, d.name.c_str(),
                double(d.free_bytes) / gib, double(d.total_bytes) / gib,
                fits ? "fits" : "does NOT fit (try recompute: full, a smaller batch_size or max_seq_length)");
    return fits ? 0 : 3;
#else
    std::printf("device: this brisk was built without CUDA\n");
    return 0;
#endif
  };
});
}  // namespace
