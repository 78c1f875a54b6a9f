// The CUDA TrainEngine (train/train_engine.h) over model/cuda/cuda_train_model.h.
#pragma once
#include <memory>
#include <string>

#include "train/train_engine.h"

namespace brisk::train {

// Why this config cannot train on the GPU here ("" when it can).
std::string cuda_train_engine_unavailable(const TrainConfig& cfg);
std::unique_ptr<TrainEngine> make_cuda_train_engine(const TrainConfig& cfg, Model& model, LoraAdapter* lora,
                                                    Recompute rc, int64_t max_tokens);

}  // namespace brisk::train
