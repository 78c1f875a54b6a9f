// `brisk info MODEL_DIR`: architecture, parameter count, dtypes, memory needs.
#include <cstdio>
#include <map>

#include "cli/commands.h"
#include "core/arena.h"
#include "backend/quant.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "model/gguf_model.h"
#include "io/safetensors.h"
#include "model/arch.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace {
brisk::cli::Registrar reg("info", "Print a model's architecture, size and memory needs", [](CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  auto ctx = std::make_shared<int64_t>(4096);
  app.add_option("MODEL_DIR", *dir, "Hugging Face model folder or .gguf file")->required();
  app.add_option("--ctx", *ctx, "Context length for the KV-cache estimate")->default_val(4096);
  return [dir, ctx]() -> int {
    using namespace brisk;
    ModelConfig c;
    std::map<std::string, int64_t> dtypes;
    size_t file_bytes = 0, mem_bytes = 0;  // mem_bytes: the CPU engine's in-memory weights
    if (is_gguf_path(*dir)) {  // a GGUF file: metadata and tensor types from the file
      io::GGUFFile f = io::GGUFFile::open(*dir);
      c = config_from_gguf(f);
      for (const io::GGUFTensorInfo& t : f.tensors()) {
        int64_t n = 1;
        for (int64_t d : t.ne) n *= d;
        dtypes[quant::ggml_type_name(t.ggml_type)] += n;
        file_bytes += t.nbytes;
        DType d;  // block-quantized weights stay as they are; F16/BF16 are widened to F32
        mem_bytes += quant::dtype_of_ggml(t.ggml_type, &d) && dtype_is_quantized(d) ? t.nbytes : size_t(n) * 4;
      }
    } else {
      c = io::load_model_config(*dir);
      io::ModelWeights w = io::ModelWeights::open(*dir);
      for (const std::string& n : w.names()) {
        Tensor t = w.get(n);
        dtypes[dtype_name(t.dtype)] += t.numel();
        file_bytes += t.nbytes();
      }
      mem_bytes = weight_bytes_f32(c);
    }
    const ArchInfo& ai = arch_info(c.arch);
    std::printf("architecture   %s (%s)\n", c.model_type.c_str(), ai.hf_architecture);
    std::printf("parameters     %.3fB (%lld)\n", double(parameter_count(c)) / 1e9, (long long)parameter_count(c));
    std::printf("layers         %lld, hidden %lld, intermediate %lld\n", (long long)c.num_layers,
                (long long)c.hidden_size, (long long)c.intermediate_size);
    std::printf("attention      %lld heads, %lld kv heads, head_dim %lld%s%s\n", (long long)c.num_heads,
                (long long)c.num_kv_heads, (long long)c.head_dim, c.attention_bias ? ", qkv bias" : "",
                c.qk_norm ? ", q/k norm" : "");
    if (c.sliding_window > 0) std::printf("sliding window %lld\n", (long long)c.sliding_window);
    std::printf("rope           theta %g, scaling %s", c.rope_theta, rope_type_name(c.rope_scaling.type));
    if (c.rope_scaling.type != RopeType::Default) std::printf(" (factor %g)", c.rope_scaling.factor);
    std::printf("\nvocab          %lld, embeddings %s\n", (long long)c.vocab_size, c.tie_word_embeddings ? "tied" : "untied");
    std::printf("context        %lld positions\n", (long long)c.max_position_embeddings);
    std::printf("weights        %s on disk (", format_bytes(double(file_bytes)).c_str());
    bool first = true;
    for (auto& [name, n] : dtypes) {
      std::printf("%s%s %.1fM", first ? "" : ", ", name.c_str(), double(n) / 1e6);
      first = false;
    }
    std::printf(")\n");
    std::printf("memory (CPU)   weights %s, KV cache %s for %lld tokens\n", format_bytes(double(mem_bytes)).c_str(),
                format_bytes(double(KVCache::bytes_needed(c, 1, *ctx))).c_str(), (long long)*ctx);
    return 0;
  };
});
}  // namespace
