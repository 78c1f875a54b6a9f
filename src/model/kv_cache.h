// KV cache: per layer, per sequence slot, keys and values for up to `capacity` positions.
// Layout [layer][slot][position][kv_head][head_dim], f32, one planned arena.
#pragma once
#include <vector>

#include "core/arena.h"
#include "model/config.h"

namespace brisk {

class KVCache {
 public:
  KVCache() = default;
  KVCache(const ModelConfig& cfg, int n_slots, int64_t capacity);
  static size_t bytes_needed(const ModelConfig& cfg, int n_slots, int64_t capacity);

  Tensor keys(int64_t layer, int slot) const;    // [capacity, nkv, hd]
  Tensor values(int64_t layer, int slot) const;  // [capacity, nkv, hd]
  int64_t length(int slot) const { return lengths_[size_t(slot)]; }
  void set_length(int slot, int64_t n) { lengths_[size_t(slot)] = n; }
  void clear(int slot) { lengths_[size_t(slot)] = 0; }
  int64_t capacity() const { return capacity_; }
  int n_slots() const { return n_slots_; }

 private:
  Arena arena_;
  std::vector<Tensor> k_, v_;  // [layer * n_slots + slot]
  std::vector<int64_t> lengths_;
  int n_slots_ = 0;
  int64_t capacity_ = 0, n_layers_ = 0;
};

}  // namespace brisk
