// What generation and serving need from a model, whichever device runs it: a set of sequence
// slots with a KV cache each, and one call that appends tokens to any subset of slots and
// returns the next-token logits. Prompt processing (many tokens, one slot) and batched decoding
// (one token, many slots) are the same call, as in Model::forward.
//
// Implementations: CpuDecoder (model/model.h on the CPU, below) and the CUDA decoder
// (infer/cuda/), chosen by make_decoder().
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "infer/sampler.h"
#include "model/config.h"
#include "model/model.h"

namespace brisk::infer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual const ModelConfig& config() const = 0;
  virtual std::string device_name() const = 0;  // "cpu", "cuda:0 (NVIDIA H100 ...)"

  // Makes room for n_slots sequences of up to `capacity` tokens each. Clears every slot.
  // Throws brisk::Error when the cache does not fit (the message says how much it needs).
  virtual void reserve(int n_slots, int64_t capacity) = 0;
  virtual int n_slots() const = 0;
  virtual int64_t capacity() const = 0;
  virtual int64_t length(int slot) const = 0;  // tokens already in the slot's cache
  virtual void clear(int slot) = 0;            // forget a sequence (its slot can be reused)

  // Appends each chunk's tokens to its slot and returns host f32 logits [rows, vocab]: for each
  // chunk in order, one row per token (all_logits) or one for its last token. The view is valid
  // until the next call. A chunk that would overflow its slot is a brisk::Error (nothing runs).
  virtual Tensor forward(const std::vector<SeqChunk>& batch) = 0;

  // Applies (or removes, with null) a LoRA adapter to every following forward. Not owned.
  virtual void set_adapter(const LoraAdapter* adapter) = 0;

  // forward(batch), then the next token of every chunk: samplers[i] picks from chunk i's last
  // logits row with histories[i] (prompt + generated ids, for the penalties). One sampler and one
  // history per chunk. The default samples on the host; a device decoder may sample where the
  // logits are and copy back only the ids (the CUDA decoder does; its random draw may differ
  // from the host Sampler's, its greedy choice never does).
  virtual std::vector<int32_t> forward_sample(const std::vector<SeqChunk>& batch, std::vector<Sampler*>& samplers,
                                              const std::vector<const std::vector<int32_t>*>& histories);
};

// The reference decoder: Model::forward over a host KVCache.
class CpuDecoder : public Decoder {
 public:
  explicit CpuDecoder(Model& model) : model_(model) {}
  const ModelConfig& config() const override { return model_.config(); }
  std::string device_name() const override { return "cpu"; }
  void reserve(int n_slots, int64_t capacity) override;
  int n_slots() const override { return cache_.n_slots(); }
  int64_t capacity() const override { return cache_.capacity(); }
  int64_t length(int slot) const override { return cache_.length(slot); }
  void clear(int slot) override { cache_.clear(slot); }
  Tensor forward(const std::vector<SeqChunk>& batch) override;
  void set_adapter(const LoraAdapter* adapter) override { model_.set_adapter(adapter); }

 private:
  Model& model_;
  KVCache cache_;
};

// "cpu", "cuda" or "auto" (CUDA when this build has it and a usable GPU is present, else CPU).
// Throws brisk::Error for "cuda" without a usable GPU (the message says why). The model must
// outlive the decoder; a CUDA decoder copies its weights (and the model's adapter, if one is
// set) to the GPU.
std::unique_ptr<Decoder> make_decoder(Model& model, const std::string& device);

}  // namespace brisk::infer
