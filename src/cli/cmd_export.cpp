// `brisk export merged|gguf|lora-gguf`: ship a fine-tuned model.
#include <cstdio>

#include "cli/commands.h"
#include "core/arena.h"
#include "export/gguf_export.h"
#include "export/merge.h"

namespace {
using namespace brisk;

cli::Registrar merged("export merged", "Merge a LoRA adapter into its base and write a HF model folder", [](CLI::App& app) {
  auto o = std::make_shared<exporter::MergedExportOptions>();
  auto shard = std::make_shared<std::string>("5GB");
  app.add_option("BASE_DIR", o->base_dir, "Base model folder")->required();
  app.add_option("--adapter", o->adapter_dir, "LoRA adapter folder (PEFT format)")->required();
  app.add_option("--out", o->out_dir, "Output folder")->required();
  app.add_option("--dtype", o->dtype, "bf16, f16 or f32")->default_val("bf16");
  app.add_option("--shard-size", *shard, "Largest safetensors shard (e.g. 5GB, 500MB)")->default_val("5GB");
  app.add_flag("--force", o->force, "Replace an existing output folder");
  return [o, shard]() -> int {
    o->shard_bytes = exporter::parse_size(*shard);
    exporter::export_merged(*o);
    return 0;
  };
});

cli::Registrar gguf("export gguf", "Write a GGUF file (llama.cpp, Ollama, LM Studio) with optional quantization", [](CLI::App& app) {
  auto o = std::make_shared<exporter::GGUFExportOptions>();
  app.add_option("MODEL_DIR", o->model_dir, "HF model folder")->required();
  app.add_option("--adapter", o->adapter_dir, "Merge this LoRA adapter (PEFT format) first");
  app.add_option("--out", o->out_path, "Output .gguf file")->required();
  app.add_option("--quant", o->quant, "f32, f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m or q6_k")->default_val("f16");
  app.add_flag("--force", o->force, "Replace an existing output file");
  return [o]() -> int {
    exporter::GGUFExportReport r = exporter::export_gguf(*o);
    for (const std::string& f : r.fallbacks) std::fprintf(stderr, "note: %s\n", f.c_str());
    std::printf("wrote %s (%s, %s, %.1fs)\n", o->out_path.c_str(), o->quant.c_str(), format_bytes(double(r.bytes)).c_str(),
                r.seconds);
    for (auto& [type, st] : r.per_type)
      std::printf("  %-5s %4lld tensors  RMSE %.3g  (%.2f%% of RMS weight)\n", type.c_str(), (long long)st.tensors,
                  st.rmse(), 100.0 * st.relative_rmse());
    return 0;
  };
});

cli::Registrar lora("export lora-gguf", "Write a LoRA adapter as a GGUF LoRA file for llama.cpp", [](CLI::App& app) {
  auto o = std::make_shared<exporter::LoraGGUFOptions>();
  app.add_option("ADAPTER_DIR", o->adapter_dir, "LoRA adapter folder (PEFT format)")->required();
  app.add_option("--base", o->base_dir, "The adapter's base model folder")->required();
  app.add_option("--out", o->out_path, "Output .gguf file")->required();
  app.add_flag("--force", o->force, "Replace an existing output file");
  return [o]() -> int {
    exporter::export_lora_gguf(*o);
    return 0;
  };
});
}  // namespace
