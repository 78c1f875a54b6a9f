#include "model/kv_cache.h"

namespace brisk {

size_t KVCache::bytes_needed(const ModelConfig& c, int n_slots, int64_t capacity) {
  MemoryPlan plan;
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (int s = 0; s < n_slots; ++s) {
      plan.add("k", DType::F32, {capacity, c.num_kv_heads, c.head_dim});
      plan.add("v", DType::F32, {capacity, c.num_kv_heads, c.head_dim});
    }
  return plan.total();
}

KVCache::KVCache(const ModelConfig& c, int n_slots, int64_t capacity)
    : arena_(bytes_needed(c, n_slots, capacity)),
      lengths_(size_t(n_slots), 0),
      n_slots_(n_slots),
      capacity_(capacity),
      n_layers_(c.num_layers) {
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (int s = 0; s < n_slots; ++s) {
      k_.push_back(arena_.tensor(DType::F32, {capacity, c.num_kv_heads, c.head_dim}));
      v_.push_back(arena_.tensor(DType::F32, {capacity, c.num_kv_heads, c.head_dim}));
    }
}

Tensor KVCache::keys(int64_t layer, int slot) const { return k_[size_t(layer * n_slots_ + slot)]; }
Tensor KVCache::values(int64_t layer, int slot) const { return v_[size_t(layer * n_slots_ + slot)]; }

}  // namespace brisk
