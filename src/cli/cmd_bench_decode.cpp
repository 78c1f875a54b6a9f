// `brisk bench decode MODEL_DIR`: prompt-processing and decode throughput, one JSON line.
// On CUDA it also reports the weight bytes a decode step reads, the device-to-device copy
// bandwidth measured in the same run, and the fraction of it the decode step achieves
// (weight bytes per token x tokens/s / copy bandwidth): how close batch-1 decoding is to the
// memory-bandwidth bound.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "infer/decoder.h"
#include "infer/sampler.h"
#include "model/model.h"
#ifdef BRISK_HAVE_CUDA
#include "infer/cuda/cuda_decoder.h"
#endif

namespace {
brisk::cli::Registrar reg("bench decode", "Prompt and decode tokens/s (batch 1, greedy)", [](CLI::App& app) {
  struct Args {
    std::string dir, device = "auto";
    int64_t prompt = 128, gen = 32;
    int repeat = 1;
  };
  auto a = std::make_shared<Args>();
  app.add_option("MODEL_DIR", a->dir, "Hugging Face model folder")->required();
  app.add_option("--prompt-tokens", a->prompt, "Prompt length")->default_val(128);
  app.add_option("--gen-tokens", a->gen, "Tokens to decode")->default_val(32);
  app.add_option("--repeat", a->repeat, "Runs (the best is reported)")->default_val(1);
  app.add_option("--device", a->device, "cpu, cuda or auto")->default_val("auto");
  return [a]() -> int {
    using namespace brisk;
    using clock = std::chrono::steady_clock;
    BRISK_CHECK(a->prompt >= 1 && a->gen >= 1 && a->repeat >= 1, "--prompt-tokens, --gen-tokens and --repeat must be >= 1");
    auto load0 = clock::now();
    auto model = Model::load(a->dir);
    const ModelConfig& c = model->config();
    model->set_max_batch_tokens(a->prompt);
    std::unique_ptr<infer::Decoder> dec = infer::make_decoder(*model, a->device);
    double load_s = std::chrono::duration<double>(clock::now() - load0).count();
    Rng rng(42);
    std::vector<int32_t> prompt(size_t(a->prompt));
    for (auto& t : prompt) t = int32_t(rng.below(uint64_t(c.vocab_size)));
    infer::SamplingParams sp;
    sp.temperature = 0.0f;
    double best_pp = 0, best_tg = 0;
    for (int r = 0; r < a->repeat; ++r) {
      dec->reserve(1, a->prompt + a->gen);
      infer::Sampler greedy(sp);
      std::vector<int32_t> hist = prompt;
      std::vector<infer::Sampler*> samplers{&greedy};
      std::vector<const std::vector<int32_t>*> histories{&hist};
      auto t0 = clock::now();
      int32_t id = dec->forward_sample({SeqChunk{0, prompt, false}}, samplers, histories)[0];
      double pp = std::chrono::duration<double>(clock::now() - t0).count();
      auto t1 = clock::now();
      for (int64_t i = 0; i < a->gen; ++i) {
        hist.push_back(id);
        id = dec->forward_sample({SeqChunk{0, {id}, false}}, samplers, histories)[0];
      }
      double tg = std::chrono::duration<double>(clock::now() - t1).count();
      best_pp = std::max(best_pp, double(a->prompt) / pp);
      best_tg = std::max(best_tg, double(a->gen) / tg);
    }
    nlohmann::json j = {{"bench", "decode"}, {"model", a->dir}, {"device", dec->device_name()},
                        {"threads", num_threads()}, {"params", parameter_count(c)},
                        {"prompt_tokens", a->prompt}, {"gen_tokens", a->gen},
                        {"prompt_tok_s", best_pp}, {"decode_tok_s", best_tg}, {"load_s", load_s}};
#ifdef BRISK_HAVE_CUDA
    infer::CudaDecoderStats st;
    if (infer::cuda_decoder_stats(*dec, &st)) {
      const double bw = infer::measure_copy_bandwidth(size_t(1) << 30);  // 1 GiB each way
      j["peak_device_bytes"] = st.device_used_bytes;  // everything is planned up front: used == peak
      j["weight_bytes"] = st.weight_bytes;
      j["kv_cache_bytes"] = st.kv_cache_bytes;
      j["activation_bytes"] = st.activation_bytes;
      j["weight_bytes_per_token"] = st.weight_bytes_per_token;
      j["d2d_copy_bytes_s"] = bw;
      j["decode_bandwidth_fraction"] = double(st.weight_bytes_per_token) * best_tg / bw;
      j["cuda_graph"] = st.graph_active;
    }
#endif
    std::printf("%s\n", j.dump().c_str());
    return 0;
  };
});
}  // namespace
