// Merging a LoRA adapter into its base model and writing the result as a Hugging Face folder.
#pragma once
#include <cstdint>
#include <string>

#include "model/config.h"
#include "model/lora.h"

namespace brisk::exporter {

// W' = W + s * B A for every adapted projection of layer `layer` (in place, f32 [out, in]).
void merge_lora_into(float* w, const LoraModule& m, float scale);

struct MergedExportOptions {
  std::string base_dir, adapter_dir, out_dir;
  std::string dtype = "bf16";          // bf16, f16 or f32
  uint64_t shard_bytes = 5ull << 30;   // --shard-size
  bool force = false;                  // replace an existing out_dir
  bool progress = true;
};

// Writes config.json (torch_dtype updated), sharded safetensors + index, generation config and
// the tokenizer/chat-template files into a temporary folder, then renames it to out_dir.
void export_merged(const MergedExportOptions& opt);

// "5GB", "500MB", "2GiB", "1000000" -> bytes. Throws naming the bad value.
uint64_t parse_size(const std::string& s);

}  // namespace brisk::exporter
