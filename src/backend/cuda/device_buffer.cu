#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"

namespace brisk::cuda {

DeviceBuffer::DeviceBuffer(size_t bytes) {
  if (bytes == 0) return;
  const cudaError_t e = cudaMalloc(&data_, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();  // an allocation failure is not sticky; clear it for later checks
    throw Error(cat("cannot allocate ", format_bytes(double(bytes)), " of GPU memory: ", cudaGetErrorString(e)));
  }
  size_ = bytes;
}

DeviceBuffer::~DeviceBuffer() {
  // A destructor cannot throw; cudaFree fails only on a context already broken by an earlier
  // error, which the next checked call reports.
  if (data_) cudaFree(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (data_) cudaFree(data_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void DeviceBuffer::upload(const void* host, size_t bytes, size_t offset) {
  BRISK_ASSERT(offset <= size_ && bytes <= size_ - offset, "DeviceBuffer::upload of ", bytes, " bytes at ", offset,
               " into ", size_);
  if (bytes) copy_to_device(static_cast<char*>(data_) + offset, host, bytes);
}

void DeviceBuffer::download(void* host, size_t bytes, size_t offset) const {
  BRISK_ASSERT(offset <= size_ && bytes <= size_ - offset, "DeviceBuffer::download of ", bytes, " bytes at ",
               offset, " from ", size_);
  if (bytes) copy_to_host(host, static_cast<const char*>(data_) + offset, bytes);
}

void copy_to_device(void* device_dst, const void* host_src, size_t bytes) {
  BRISK_CUDA_CHECK(cudaMemcpy(device_dst, host_src, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* host_dst, const void* device_src, size_t bytes) {
  BRISK_CUDA_CHECK(cudaMemcpy(host_dst, device_src, bytes, cudaMemcpyDeviceToHost));
}

void copy_to_device_async(void* device_dst, const void* host_src, size_t bytes, cudaStream_t stream) {
  BRISK_CUDA_CHECK(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, stream));
}

void copy_to_host_async(void* host_dst, const void* device_src, size_t bytes, cudaStream_t stream) {
  BRISK_CUDA_CHECK(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, stream));
}

void synchronize() { BRISK_CUDA_CHECK(cudaDeviceSynchronize()); }

DeviceArena::DeviceArena(size_t capacity)
    : buffer_((capacity + kArenaAlign - 1) / kArenaAlign * kArenaAlign) {}

void* DeviceArena::alloc(size_t bytes) {
  const size_t n = (bytes + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
  BRISK_ASSERT(used_ + n <= buffer_.size(), "device arena overflow: plan too small (need ", used_ + n,
               " bytes, have ", buffer_.size(), ")");
  void* p = static_cast<char*>(buffer_.data()) + used_;
  used_ += n;
  return p;
}

}  // namespace brisk::cuda
