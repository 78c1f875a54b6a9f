// Checkpoints: output_dir/checkpoints/checkpoint-<step>/ holding the trainable weights (a PEFT
// adapter, or the full model's safetensors), the AdamW moments, and trainer_state.json. Written
// into a temporary folder and renamed into place, so a crash while saving never leaves a
// half-written checkpoint under a checkpoint name (the previous one stays intact).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/lora.h"
#include "model/train_model.h"
#include "train/optimizer.h"

namespace brisk::train {

struct CheckpointState {
  int64_t step = 0;            // optimizer steps completed
  int64_t total_steps = 0;
  double last_loss = 0;
  // Where the data and random streams stand. Both are pure functions of (seed, step) — the row
  // order of epoch e is a permutation seeded by (seed, e) and the LoRA dropout masks are keyed by
  // (seed, step, micro-batch, layer, module) — so resuming needs only `step`; these fields make
  // the position visible and let a resume check that the data still lines up.
  int64_t epoch = 0, rows_into_epoch = 0, rows_per_epoch = 0;
  // Rows per optimizer step over all ranks (batch_size x grad_accum x world size) and the world
  // size that wrote it: a data-parallel resume recomputes every rank's shard from `step`, so any
  // world size may resume as long as the global batch is the same.
  int64_t global_batch_rows = 0, world_size = 1;
  uint64_t seed = 0;
  nlohmann::ordered_json config;  // the TrainConfig (to_json) the run started with
};

// Writes checkpoint-<step> atomically; returns its path. Keeps only the newest `keep` when > 0.
std::string save_checkpoint(const std::string& output_dir, const CheckpointState& st, const Model& model,
                            const LoraAdapter* lora, const std::vector<TrainGrad>& params, AdamW& opt,
                            const std::string& base_model, int64_t keep);

// Restores weights and optimizer state from a checkpoint folder; returns its state.
CheckpointState load_checkpoint(const std::string& dir, Model& model, LoraAdapter* lora,
                                std::vector<TrainGrad>& params, AdamW& opt);

std::string checkpoints_root(const std::string& output_dir);

}  // namespace brisk::train
