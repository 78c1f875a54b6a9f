// The fine-tuning loop: data order, gradient accumulation, clipping, schedule, AdamW,
// evaluation, logging (progress line, metrics.jsonl, structured events), checkpoints that
// resume bit for bit, graceful stop on SIGINT/SIGTERM, and NaN/Inf detection.
#pragma once
#include <string>

#include "train/train_config.h"

namespace brisk::train {

class Communicator;

struct TrainerOptions {
  bool resume = false;       // continue from the newest checkpoint in output_dir (or resume_from)
  std::string resume_from;   // a checkpoint folder
  std::string events_path;   // append JSON-line events here ("" = none)
  int events_fd = -1;        // or write them to this file descriptor
  bool quiet = false;        // no progress line
  // Data parallelism (train/dist/, docs/MULTI_GPU.md): this process is comm->rank() of
  // comm->size() and trains on its shard of every global batch of batch_size x grad_accum x
  // size() rows; rank 0 alone writes metrics, events, checkpoints and outputs. nullptr = one
  // process (the same code path with a LocalCommunicator).
  Communicator* comm = nullptr;
  // Check every this many steps (and at every checkpoint and the end) that all ranks hold
  // identical parameters; 0 = only at checkpoints and the end.
  int64_t replica_check_steps = 0;
  // 1: ZeRO stage 1, the AdamW moments sharded over the ranks (CPU engine; train/dist/zero1.h).
  int zero_stage = 0;
};

enum class TrainOutcome { Completed, Interrupted };

// Runs the whole job described by cfg. User errors are brisk::Error (nothing half-written:
// outputs are only renamed into place when complete).
TrainOutcome run_training(const TrainConfig& cfg, const TrainerOptions& opt);

// Folder of the newest complete checkpoint under output_dir ("" if none).
std::string latest_checkpoint(const std::string& output_dir);

}  // namespace brisk::train
