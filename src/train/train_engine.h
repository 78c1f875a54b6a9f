// Where a fine-tune's forward, backward and optimizer step run. The trainer (train/trainer.cpp)
// is the same loop for every device; an engine owns the model's trainable state there:
//   CPU:  TrainModel (model/train_model.h) + AdamW (train/optimizer.h) on host tensors.
//   CUDA: CudaTrainModel (model/cuda/) with the optimizer on the GPU; host copies of the
//         adapter and the AdamW moments are refreshed by sync_to_host() for checkpoints.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/lora.h"
#include "model/model.h"
#include "model/train_memory.h"
#include "model/train_model.h"
#include "train/optimizer.h"

namespace brisk::train {

struct TrainConfig;
class Communicator;

class TrainEngine {
 public:
  virtual ~TrainEngine() = default;
  virtual std::string device() const = 0;  // "cpu" or "cuda"
  virtual double forward_backward(const TokenBatch& batch, float grad_scale, uint64_t dropout_seed) = 0;
  virtual double loss_only(const TokenBatch& batch) = 0;
  virtual double clip_grad_norm(double max_norm) = 0;  // returns the norm before clipping
  virtual void optimizer_step(const AdamWOptions& o) = 0;  // and zero the gradients
  // Host tensors a checkpoint saves and loads: current after sync_to_host(); after changing
  // them (a checkpoint load), sync_from_host() makes the engine use them.
  virtual std::vector<TrainGrad>& params() = 0;
  virtual AdamW& optimizer() = 0;
  virtual void sync_to_host() {}
  virtual void sync_from_host() {}

  // Data parallelism (train/dist/): the accumulated gradients, summed over ranks between the
  // last forward_backward and clip_grad_norm. CPU: one span per trainable tensor, host memory.
  // CUDA: the whole gradient arena as one span, device memory, with the engine's stream
  // drained (the reduce runs on the communicator's stream; it does not overlap backward yet).
  struct GradSpan {
    float* data;
    size_t n;
  };
  virtual std::vector<GradSpan> gradient_spans() = 0;
  virtual bool gradients_on_device() const { return false; }
  // ZeRO stage 1 (train/dist/zero1.h; the CPU engine): from now on optimizer_step keeps and
  // updates only this rank's share of the AdamW moments. Call after a resume has loaded them.
  virtual void enable_zero1(Communicator& comm);
  // Collective around a checkpoint written by rank `saver`: optimizer() holds every moment on
  // `saver` between the two (a no-op without ZeRO).
  virtual void gather_optimizer_state(int saver) {}
  virtual void release_optimizer_state() {}
  // Host bytes of AdamW moments this process holds.
  virtual size_t optimizer_state_bytes() { return optimizer().state_bytes(); }
};

// Picks the device from cfg.device ("auto": CUDA when this build has it and a usable GPU is
// present) and builds the engine. max_tokens: the largest micro-batch (GPU memory is planned
// for it; the CUDA engine refuses to start, with the plan, when it does not fit).
std::unique_ptr<TrainEngine> make_train_engine(const TrainConfig& cfg, Model& model, LoraAdapter* lora,
                                               int64_t max_tokens);

// The GPU memory plan of cfg (for `brisk plan`): the model's config.json is read, no weights.
TrainShape train_shape(const TrainConfig& cfg, const ModelConfig& mc, int64_t max_tokens);

}  // namespace brisk::train
