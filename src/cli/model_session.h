// What `generate`, `chat` and `bench decode` share: loading a model folder (weights,
// tokenizer, generation config) and turning command-line flags into prompts and options.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "infer/generate.h"
#include "model/config.h"
#include "model/model.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace brisk::cli {

struct GenerateArgs {
  std::string model_dir, prompt, prompt_ids_json, adapter_dir;
  std::string device = "auto";  // cpu, cuda or auto (infer::make_decoder)
  bool raw = false, json = false;
  int64_t max_tokens = 256;
  int64_t ctx = 0;
  // Sampling flags; NaN/-1 mean "not given": fall back to generation_config.json, then greedy.
  double temperature = -1, top_p = -1, min_p = -1, repeat_penalty = -1;
  int64_t top_k = -1;
  uint64_t seed = 0;
  std::vector<std::string> stops;
  std::vector<std::string> template_vars;  // --set KEY=JSON, passed to the chat template
  void add_sampling_flags(CLI::App& app);
};

struct ModelSession {
  std::string dir;
  std::unique_ptr<Model> model;
  std::unique_ptr<text::Tokenizer> tokenizer;  // null when the folder has no tokenizer.json
  GenerationConfig gen;
  std::unique_ptr<text::ChatTemplate> chat_template;  // null when the model has none
  std::string bos_token, eos_token;                    // for the template

  std::unique_ptr<LoraAdapter> adapter;               // --adapter, applied in every forward

  // dir: a HF model folder or a .gguf file.
  static ModelSession open(const std::string& dir, const std::string& adapter_dir = "");
  static ModelSession open_gguf(const std::string& path, const std::string& adapter_dir);
  // The decoder for --device (the adapter, if any, applied).
  std::unique_ptr<infer::Decoder> decoder(const std::string& device) const;
  // Prompt ids from --prompt-ids, or --prompt (tokenized; through the chat template unless --raw).
  std::vector<int32_t> prompt_ids(const GenerateArgs& a) const;
  infer::GenerateOptions generate_options(const GenerateArgs& a) const;
  // Renders messages through the chat template (add_generation_prompt) and tokenizes them
  // without adding special tokens again, as transformers' apply_chat_template(tokenize=True).
  std::vector<int32_t> chat_prompt_ids(const nlohmann::ordered_json& messages,
                                       const std::vector<std::string>& template_vars) const;
};

}  // namespace brisk::cli
