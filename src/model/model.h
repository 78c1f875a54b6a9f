// A loaded decoder-only transformer and its forward pass on the CPU backend.
//
// forward() runs a batch of sequences, each appending some new tokens to its KV-cache slot:
// all tokens of the batch go through the projections and the MLP together (one GEMM each),
// and attention runs per sequence against that sequence's cache. This is the shape both
// prompt processing (many tokens, one sequence) and batched serving (one token, many
// sequences) need.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/kv_cache.h"
#include "model/lora.h"
#include "model/rope.h"
#include "model/weights.h"

namespace brisk {

struct SeqChunk {
  int slot = 0;                 // KV-cache slot of this sequence
  std::vector<int32_t> tokens;  // new tokens, appended at positions cache.length(slot) ...
  bool all_logits = false;      // logits for every new token (else only the last)
};

class Model {
 public:
  // Reads config.json and the safetensors weights of a HF model folder.
  static std::unique_ptr<Model> load(const std::string& dir);
  Model(ModelConfig cfg, ModelWeights weights);

  const ModelConfig& config() const { return cfg_; }
  ModelWeights& weights() { return w_; }
  const RopeTable& rope() const { return rope_; }
  // Applies a LoRA adapter in every forward (null: base model only). Not owned.
  void set_adapter(const LoraAdapter* adapter) { adapter_ = adapter; }
  const LoraAdapter* adapter() const { return adapter_; }

  // Logits rows: for each chunk in order, one row per token (all_logits) or one for the last.
  // Returns a [rows, vocab] view into memory owned by the model (valid until the next call).
  // Advances the cache length of every slot touched.
  Tensor forward(const std::vector<SeqChunk>& batch, KVCache& cache);

  // Largest number of tokens one forward() call may carry (bigger batches are split by the
  // caller); activation memory is planned for this.
  int64_t max_batch_tokens() const { return max_tokens_; }
  void set_max_batch_tokens(int64_t n);

 private:
  void plan_activations(int64_t tokens, int64_t logit_rows);
  void layer_forward(int64_t layer, const std::vector<SeqChunk>& batch, const std::vector<int32_t>& pos,
                     KVCache& cache, int64_t T);

  // out += s * (x A^T) B^T for the adapter's module (layer, p), if any.
  void apply_lora(int64_t layer, Proj p, const Tensor& x, Tensor out);

  ModelConfig cfg_;
  ModelWeights w_;
  const LoraAdapter* adapter_ = nullptr;
  HostTensor lora_tmp_;
  RopeTable rope_;
  int64_t max_tokens_ = 0, max_logit_rows_ = 0;
  Arena act_;
  Tensor x_, xn_, q_, k_, v_, attn_, gate_, up_, rows_, logits_;
};

}  // namespace brisk
