// Device memory: an owning RAII allocation (DeviceBuffer) for things that are not planned (test
// inputs, one-off scratch), and a DeviceArena, the device twin of core/arena.h's Arena: one
// cudaMalloc of a MemoryPlan's total, carved by bump allocation, so a job that does not fit
// fails at start-up instead of running out of memory mid-run.
#pragma once
#include <cstddef>

#include "core/arena.h"
#include "core/tensor.h"

typedef struct CUstream_st* cudaStream_t;

namespace brisk::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);  // throws brisk::Error (with the size) when it cannot
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  template <typename T> T* as() const { return static_cast<T*>(data_); }
  size_t size() const { return size_; }

  // Synchronous copies of `bytes` at byte `offset` of this buffer (range checked).
  void upload(const void* host, size_t bytes, size_t offset = 0);
  void download(void* host, size_t bytes, size_t offset = 0) const;

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Plain copies, synchronous (cudaMemcpy) or on a stream (cudaMemcpyAsync; the host memory must
// stay alive until the stream reaches the copy).
void copy_to_device(void* device_dst, const void* host_src, size_t bytes);
void copy_to_host(void* host_dst, const void* device_src, size_t bytes);
void copy_to_device_async(void* device_dst, const void* host_src, size_t bytes, cudaStream_t stream);
void copy_to_host_async(void* host_dst, const void* device_src, size_t bytes, cudaStream_t stream);
void synchronize();  // cudaDeviceSynchronize, checked: surfaces errors of asynchronous kernels

class DeviceArena {
 public:
  DeviceArena() = default;
  explicit DeviceArena(size_t capacity);  // one cudaMalloc; throws brisk::Error when it cannot
  explicit DeviceArena(const MemoryPlan& plan) : DeviceArena(plan.total()) {}
  DeviceArena(DeviceArena&&) noexcept = default;
  DeviceArena& operator=(DeviceArena&&) noexcept = default;

  void* alloc(size_t bytes);  // kArenaAlign-aligned; asserts when the plan was too small (a bug)
  Tensor tensor(DType dtype, Shape shape) {
    return Tensor(alloc(tensor_bytes(dtype, shape)), dtype, shape, Device::CUDA);
  }
  void reset() { used_ = 0; }
  size_t used() const { return used_; }
  size_t capacity() const { return buffer_.size(); }

 private:
  DeviceBuffer buffer_;
  size_t used_ = 0;
};

}  // namespace brisk::cuda
