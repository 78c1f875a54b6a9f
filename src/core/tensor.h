// Tensor: a non-owning view (pointer, shape, strides in elements, dtype, device). Storage is
// owned elsewhere: an Arena, an mmap'd file, or a Buffer. Up to 4 dimensions, row-major.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace brisk {

enum class Device : uint8_t { CPU, CUDA };
const char* device_name(Device d);

constexpr int kMaxDims = 4;

struct Shape {
  int ndim = 0;
  std::array<int64_t, kMaxDims> d{};
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  static Shape of(const std::vector<int64_t>& dims);
  int64_t operator[](int i) const { return d[i]; }
  int64_t& operator[](int i) { return d[i]; }
  int64_t numel() const;
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "[2, 3]"
  std::vector<int64_t> vec() const { return {d.begin(), d.begin() + ndim}; }
};

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  Shape shape;
  std::array<int64_t, kMaxDims> stride{};  // in elements

  Tensor() = default;
  Tensor(void* data, DType dtype, Shape shape, Device device = Device::CPU);  // contiguous

  int ndim() const { return shape.ndim; }
  int64_t dim(int i) const { return shape[i < 0 ? i + shape.ndim : i]; }
  int64_t numel() const { return shape.numel(); }
  size_t nbytes() const;  // block-quantized types: rows x row bytes
  bool is_contiguous() const;
  bool defined() const { return data != nullptr; }

  template <typename T> T* ptr() const { return static_cast<T*>(data); }
  float* f32() const;  // checked: dtype must be F32

  // Views (no copies). reshape needs a contiguous tensor; slice takes rows of dim 0.
  Tensor reshape(Shape s) const;
  Tensor rows(int64_t begin, int64_t end) const;
  Tensor select(int64_t i) const;  // drops dim 0

  std::string desc() const;  // "F32[2, 3] cpu"
  int64_t dim0_stride_bytes() const;
};

// Bytes of a contiguous tensor (block-quantized types: rows x row bytes).
size_t tensor_bytes(DType dtype, const Shape& shape);

// An owning host buffer (64-byte aligned) for tensors that are not planned: test inputs,
// converted weights, scratch in tools. Hot paths take their memory from an Arena instead.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t bytes);
  ~Buffer();
  Buffer(Buffer&& o) noexcept;
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// A tensor together with the host memory that holds it.
struct HostTensor {
  Buffer buf;
  Tensor t;
  HostTensor() = default;
  HostTensor(DType dtype, Shape shape);
  float* f32() const { return t.f32(); }
};

}  // namespace brisk
