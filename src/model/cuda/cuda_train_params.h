// Full fine-tuning's trainable state on the GPU, the torch/HF mixed-precision recipe: f32 master
// weights, f32 gradients and f32 AdamW moments in four device arenas of one layout
// (model/train_memory.h's full_param_layout: every weight of weight_specs, 64-float aligned), and
// the trainer's working weights (bf16 matrices, embeddings and biases; f32 norm weights), which
// the forward and backward GEMMs read and which are refreshed from the masters after every
// optimizer step. The parameter list (names, order, weight decay, frozen embeddings / LM head) is
// the CPU trainer's (full_finetune_params), so checkpoints are the same files on either device.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "model/weights.h"

namespace brisk::train {
class AdamW;
}  // namespace brisk::train

namespace brisk::cuda {

struct AdamWHyper;

class CudaFullParams {
 public:
  // working: the trainer's device weights as tensors in ModelWeights fields (lm_head aliasing
  // embed when tied); they must stay alive as long as this object. Allocates and zeroes the
  // four arenas; upload() then fills the masters.
  CudaFullParams(const ModelConfig& c, ModelWeights& working, bool train_embed, bool train_head,
                 cudaStream_t stream);

  // Views of the gradient arena in ModelWeights fields, where backward accumulates: undefined
  // for frozen tensors; lm_head is embed's gradient when the embeddings are tied (and both train).
  const ModelWeights& grads() const { return grads_; }
  float* grad_arena() const { return grad_; }
  size_t arena_floats() const { return floats_; }

  // Host f32 weights (weight_specs layout, as Model::load gives them) into the masters and the
  // working copies; the AdamW moments from opt's state when given (its params in
  // full_finetune_params order), zero otherwise. Synchronous.
  void upload(ModelWeights& host, train::AdamW* opt);
  // The trainable masters into the host weights and the moments into opt's state. Synchronous.
  void download(ModelWeights& host, train::AdamW* opt) const;
  // Benchmarks: the masters from the working copies (random weights made on the device), zero
  // moments. Synchronous.
  void masters_from_working();
  // One AdamW step (t = step, 1-based) on every trainable tensor, with its decay flag, then
  // refreshes their working copies. Asynchronous on the stream.
  void step(const AdamWHyper& h, int64_t step);
  void zero_grad();
  // The accumulated gradient of the trainable tensor `name` (HF name). Synchronous.
  std::vector<float> gradient(const std::string& name) const;

 private:
  struct Entry {
    std::string name;
    size_t off;      // element offset in the four arenas
    Tensor working;  // device tensor the kernels read (BF16 or F32)
    bool trainable, decay;
  };
  void refresh(const Entry& e);
  const Entry& trainable_entry(size_t k, const std::string& state_name) const;

  ModelConfig cfg_;
  cudaStream_t stream_;
  std::vector<Entry> entries_;  // weight_specs order
  std::vector<size_t> trainable_;  // indices of trainable entries, in full_finetune_params order
  DeviceArena arena_;
  float *master_ = nullptr, *grad_ = nullptr, *m_ = nullptr, *v_ = nullptr;
  size_t floats_ = 0;
  ModelWeights grads_;
};

}  // namespace brisk::cuda
