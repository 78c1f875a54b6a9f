// `brisk bench train`: training throughput (forward + backward + AdamW) on random tokens for a
// preset shape, one JSON line: tokens/s, step time, peak resident memory.
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <filesystem>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/fs.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "model/init_model.h"
#include "model/train_model.h"
#include "train/optimizer.h"
#ifdef BRISK_HAVE_CUDA
#include "backend/cuda/device_info.h"
#include "train/cuda/cuda_train_bench.h"
#include "train/dist/communicator.h"
#include "train/dist/launcher.h"
#endif

namespace {
brisk::cli::Registrar reg("bench train", "Training tokens/s and peak memory (LoRA or full) on random tokens", [](CLI::App& app) {
  struct Args {
    std::string arch = "llama", preset = "tiny", device = "cpu", recompute = "none", method = "lora";
    int64_t batch = 2, seq = 256, vocab = 128256, steps = 3;
    int lora_r = 16, gpus = 1;
  };
  auto a = std::make_shared<Args>();
  app.add_option("--arch", a->arch, "llama, mistral, qwen2 or qwen3")->default_val("llama");
  app.add_option("--preset", a->preset, "tiny, small, 1b or 8b")->default_val("tiny");
  app.add_option("--batch", a->batch, "Sequences per step")->default_val(2);
  app.add_option("--seq", a->seq, "Tokens per sequence")->default_val(256);
  app.add_option("--vocab", a->vocab, "Vocabulary size")->default_val(128256);
  app.add_option("--lora-r", a->lora_r, "LoRA rank (all seven projections)")->default_val(16);
  app.add_option("--method", a->method, "lora or full")->default_val("lora");
  app.add_option("--steps", a->steps, "Timed steps (after one warm-up step)")->default_val(3);
  app.add_option("--recompute", a->recompute, "none, selective or full")->default_val("none");
  app.add_option("--device", a->device, "cpu or cuda")->default_val("cpu");
  app.add_option("--gpus", a->gpus, "cuda: data parallel over N GPUs of this host (one worker each, NCCL)")
      ->default_val(1);
  return [a]() -> int {
    using namespace brisk;
    using clock = std::chrono::steady_clock;
    BRISK_CHECK(a->device == "cpu" || a->device == "cuda", "--device must be cpu or cuda");
    BRISK_CHECK(a->method == "lora" || a->method == "full", "--method must be lora or full");
    const Recompute rc = parse_recompute(a->recompute);
    BRISK_CHECK(a->batch >= 1 && a->seq >= 2 && a->steps >= 1, "--batch, --seq and --steps must be positive");
    if (a->device == "cuda") {
#ifdef BRISK_HAVE_CUDA
      train::CudaTrainBenchArgs ca;
      InitModelOptions io;
      io.arch = a->arch;
      io.preset = a->preset;
      io.vocab_size = a->vocab;
      ca.model = preset_config(io);
      ca.lora.r = a->lora_r;
      ca.lora.alpha = 2.0 * a->lora_r;
      ca.lora.targets.fill(true);
      ca.full = a->method == "full";
      ca.recompute = rc;
      ca.batch = a->batch;
      ca.seq = a->seq;
      ca.steps = a->steps;
      // --gpus N: the launcher re-runs this command once per GPU (as `brisk train --gpus`); a
      // worker finds its rank in the environment and rank 0 prints the result.
      std::unique_ptr<train::Communicator> comm;
      const char* worker_backend = std::getenv("BRISK_DP_BACKEND");
      if (worker_backend && *worker_backend && std::getenv("BRISK_WORLD_SIZE")) {
        comm = train::make_communicator(worker_backend, train::dist_env_from_environment());
        ca.comm = comm.get();
      } else if (a->gpus > 1) {
        const int visible = int(cuda::list_devices().size());
        BRISK_CHECK(a->gpus <= visible, "--gpus ", a->gpus, ": only ", visible, " GPU", visible == 1 ? "" : "s",
                    " visible on this host");
        train::LaunchOptions lo;
        lo.nproc_per_node = a->gpus;
        lo.backend = "nccl";
        lo.one_gpu_per_worker = true;
        std::vector<std::string> argv = {"brisk"};
        for (const std::string& s : train::this_process_arguments()) argv.push_back(s);
        return train::launch_workers(lo, argv);
      }
      nlohmann::json j = train::run_cuda_train_bench(ca);
      if (comm && comm->rank() != 0) return 0;
      j["arch"] = a->arch;
      j["preset"] = a->preset;
      j["params"] = parameter_count(ca.model);
      std::printf("%s\n", j.dump().c_str());
      return 0;
#else
      throw Error("--device cuda: this brisk was built without CUDA (CPU-only build)");
#endif
    }
    BRISK_CHECK(a->gpus == 1, "--gpus: data-parallel benchmarks run with --device cuda");
    char tmpl[] = "/tmp/brisk-bench-XXXXXX";
    BRISK_CHECK(::mkdtemp(tmpl) != nullptr, "cannot create a temporary folder");
    std::string dir = std::string(tmpl) + "/model";
    InitModelOptions io;
    io.arch = a->arch;
    io.preset = a->preset;
    io.vocab_size = a->vocab;
    init_model(dir, io);
    auto model = Model::load(dir);
    std::error_code ec;
    std::filesystem::remove_all(tmpl, ec);
    const ModelConfig& c = model->config();
    std::unique_ptr<LoraAdapter> lora;
    if (a->method == "lora") {
      LoraSpec s;
      s.r = a->lora_r;
      s.alpha = 2.0 * a->lora_r;
      s.targets.fill(true);
      lora = std::make_unique<LoraAdapter>(init_lora(c, s, 1, true));
    }
    TrainModel tm(*model, lora.get(), rc);
    std::vector<train::Param> params;
    int64_t trainable = 0;
    for (auto& g : tm.params()) {
      params.push_back({g.name, g.value, g.grad, g.decay});
      trainable += g.value.numel();
    }
    train::AdamW adam(params);
    TokenBatch b = random_token_batch(c.vocab_size, a->batch, a->seq, 5);
    const float scale = 1.0f / float(b.label_count());
    auto step = [&] {
      tm.forward_backward(b, scale, 1);
      train::clip_grad_norm(adam.params(), 1.0);
      adam.step({1e-4, 0.9, 0.999, 1e-8, 0.0});
      tm.zero_grad();
    };
    step();  // warm-up: plans activation memory, touches every page
    auto t0 = clock::now();
    for (int64_t i = 0; i < a->steps; ++i) step();
    double dt = std::chrono::duration<double>(clock::now() - t0).count() / double(a->steps);
    struct rusage ru;
    ::getrusage(RUSAGE_SELF, &ru);
    const double tokens = double(a->batch * a->seq);
    nlohmann::json j = {{"bench", "train"}, {"device", a->device}, {"arch", a->arch}, {"preset", a->preset},
                        {"method", a->method}, {"lora_r", a->method == "lora" ? a->lora_r : 0},
                        {"batch", a->batch}, {"seq", a->seq}, {"recompute", a->recompute},
                        {"threads", num_threads()}, {"params", parameter_count(c)}, {"trainable", trainable},
                        {"step_s", dt}, {"tokens_per_s", tokens / dt},
                        {"peak_rss_gib", double(ru.ru_maxrss) / (1024.0 * 1024.0)}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  };
});
}  // namespace
