// Planned memory. A MemoryPlan lists every named region a job needs (weights, KV cache,
// activations, scratch) with its size; the Arena is one allocation of the plan's total from
// which the regions are carved in order. Sizes are known before anything runs, so a job that
// does not fit fails at start-up with the breakdown instead of running out of memory mid-way.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace brisk {

constexpr size_t kArenaAlign = 256;  // enough for AVX-512 and CUDA vector loads

struct MemoryPlan {
  struct Entry {
    std::string name;
    size_t bytes;
  };
  std::vector<Entry> entries;

  void add(std::string name, size_t bytes) { entries.push_back({std::move(name), bytes}); }
  void add(std::string name, DType dtype, Shape shape) {
    add(std::move(name), tensor_bytes(dtype, shape));
  }
  size_t total() const;  // with alignment padding
  std::string table() const;  // human-readable breakdown, one line per entry
};

class Arena {
 public:
  Arena() = default;
  Arena(size_t capacity, Device device = Device::CPU);
  ~Arena();
  Arena(Arena&&) noexcept;
  Arena& operator=(Arena&&) noexcept;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* alloc(size_t bytes);  // aligned; throws when the plan was too small (a bug upstream)
  Tensor tensor(DType dtype, Shape shape) { return Tensor(alloc(tensor_bytes(dtype, shape)), dtype, shape, device_); }
  void reset() { used_ = 0; }
  size_t used() const { return used_; }
  size_t capacity() const { return capacity_; }
  Device device() const { return device_; }

 private:
  char* base_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
  Device device_ = Device::CPU;
};

std::string format_bytes(double bytes);  // "1.50 GiB"

}  // namespace brisk
