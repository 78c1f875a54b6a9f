// Native GGUF export: a HF model folder (optionally with a LoRA adapter merged in) to a GGUF v3
// file llama.cpp loads, with full metadata, the tokenizer, and block quantization; and GGUF LoRA
// adapters.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace brisk::exporter {

struct GGUFExportOptions {
  std::string model_dir, adapter_dir, out_path;
  std::string quant = "f16";  // f32 f16 bf16 q8_0 q4_0 q4_k_m q5_k_m q6_k
  bool force = false;
  bool progress = true;
};

struct QuantStats {
  double sq_err = 0, sq_ref = 0;
  int64_t count = 0, tensors = 0;
  double rmse() const;           // sqrt(sq_err / count)
  double relative_rmse() const;  // rmse / rms(reference)
};

struct GGUFExportReport {
  std::map<std::string, QuantStats> per_type;  // "Q4_K" -> error of dequantised vs original
  std::vector<std::string> fallbacks;         // tensors that got another type, and why
  uint64_t bytes = 0;
  double seconds = 0;
};

GGUFExportReport export_gguf(const GGUFExportOptions& opt);

struct LoraGGUFOptions {
  std::string adapter_dir, base_dir, out_path;
  bool force = false;
};
void export_lora_gguf(const LoraGGUFOptions& opt);

}  // namespace brisk::exporter
