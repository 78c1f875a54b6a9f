// TrainConfig: every knob of a fine-tuning run, with the names users of Unsloth, axolotl and
// TRL know. Parsed from YAML (`brisk train CONFIG.yaml`) or JSON (the studio's POST /api/runs)
// plus `--set key=value` overrides; the engine sees only this struct.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace brisk::train {

struct DatasetConfig {
  std::string path;               // JSONL, JSON (array or {"data"/"train": [...]}) or CSV
  std::string format = "auto";    // auto, text, alpaca, sharegpt, messages, prompt_completion
  std::string eval_path;          // separate eval file (optional)
  double eval_split = 0.0;        // fraction held out for eval when no eval_path (0 = none)
  std::string text_field = "text";  // for format text
  bool operator==(const DatasetConfig&) const = default;
};

struct LoraConfig {
  int r = 16;
  double alpha = 16;
  double dropout = 0.0;
  std::vector<std::string> target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  bool rslora = false;
  bool operator==(const LoraConfig&) const = default;
};

struct TrainConfig {
  std::string base_model;           // HF model folder
  std::string method = "lora";      // lora | full
  DatasetConfig dataset;
  LoraConfig lora;
  bool freeze_embeddings = false;   // full fine-tuning only
  bool freeze_lm_head = false;      // full fine-tuning only
  double learning_rate = 2e-4;
  double num_epochs = 1;
  int64_t max_steps = -1;           // > 0 overrides num_epochs
  int64_t batch_size = 2;           // sequences (or packed rows) per micro-batch
  int64_t grad_accum = 1;
  int64_t max_seq_length = 2048;
  std::string truncation = "right";  // right (keep the start) | drop (skip longer examples)
  bool packing = false;
  bool train_on_responses_only = true;
  int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;        // used when warmup_steps == 0
  std::string lr_scheduler = "linear";  // constant | linear | cosine
  double weight_decay = 0.0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;       // <= 0 disables clipping
  uint64_t seed = 3407;
  std::string output_dir;
  std::string device = "auto";      // auto (CUDA when usable, else CPU) | cpu | cuda
  std::string gpus = "1";           // data parallel over N GPUs of this host, or "all" (docs/MULTI_GPU.md)
  std::string recompute = "none";   // none | selective | full (activation memory vs compute)
  int64_t save_steps = 0;           // 0 = only at the end
  int64_t eval_steps = 0;           // 0 = only at the end (when there is eval data)
  int64_t logging_steps = 1;
  int64_t save_total_limit = 0;     // keep only the newest N checkpoints (0 = all)
  std::string chat_template_kwargs_json = "{}";  // extra template variables, as a JSON object
  bool operator==(const TrainConfig&) const = default;
};

// Parses a YAML or JSON document (YAML is a superset) into a TrainConfig. Unknown keys are an
// error naming the key and suggesting the closest valid one ("unknown key 'learning_rat'
// (did you mean 'learning_rate'?)"); wrong types and out-of-range values name the key.
TrainConfig parse_train_config(const std::string& text, const std::string& origin);
TrainConfig load_train_config(const std::string& path);
// Applies one "dotted.key=value" override (value parsed as YAML scalar/flow: 1e-4, true, [q_proj, v_proj]).
void apply_override(TrainConfig& cfg, const std::string& key_eq_value);
// Checks cross-field consistency (e.g. base_model and output_dir set, batch_size >= 1);
// throws brisk::Error naming the key.
void validate(const TrainConfig& cfg);
nlohmann::ordered_json to_json(const TrainConfig& cfg);  // every key, for checkpoints and the studio

}  // namespace brisk::train
