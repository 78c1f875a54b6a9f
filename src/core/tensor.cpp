#include "core/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <sstream>

namespace brisk {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

Shape::Shape(std::initializer_list<int64_t> dims) {
  BRISK_ASSERT(dims.size() <= size_t(kMaxDims));
  for (int64_t v : dims) d[ndim++] = v;
}

Shape Shape::of(const std::vector<int64_t>& dims) {
  BRISK_CHECK(dims.size() <= size_t(kMaxDims), "tensor has ", dims.size(), " dimensions (at most ",
              kMaxDims, " supported)");
  Shape s;
  for (int64_t v : dims) s.d[s.ndim++] = v;
  return s;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= d[i];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (ndim != o.ndim) return false;
  for (int i = 0; i < ndim; ++i)
    if (d[i] != o.d[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::ostringstream os;
  os << '[';
  for (int i = 0; i < ndim; ++i) os << (i ? ", " : "") << d[i];
  os << ']';
  return os.str();
}

Tensor::Tensor(void* data_, DType dtype_, Shape shape_, Device device_)
    : data(data_), dtype(dtype_), device(device_), shape(shape_) {
  int64_t s = 1;
  for (int i = shape.ndim - 1; i >= 0; --i) {
    stride[i] = s;
    s *= shape[i];
  }
}

size_t tensor_bytes(DType dtype, const Shape& shape) {
  if (!dtype_is_quantized(dtype)) return size_t(shape.numel()) * dtype_size(dtype);
  if (shape.ndim == 0) return 0;
  int64_t cols = shape[shape.ndim - 1];
  return size_t(shape.numel() / std::max<int64_t>(cols, 1)) * dtype_row_bytes(dtype, cols);
}

int64_t Tensor::dim0_stride_bytes() const {
  if (!dtype_is_quantized(dtype)) return stride[0] * int64_t(dtype_size(dtype));
  // Block-quantized tensors are contiguous: a step in dim 0 is the bytes of the rows below it.
  return int64_t(tensor_bytes(dtype, shape) / size_t(std::max<int64_t>(shape[0], 1)));
}

size_t Tensor::nbytes() const {
  if (!dtype_is_quantized(dtype)) return size_t(numel()) * dtype_size(dtype);
  if (shape.ndim == 0) return 0;
  int64_t cols = shape[shape.ndim - 1];
  return size_t(numel() / std::max<int64_t>(cols, 1)) * dtype_row_bytes(dtype, cols);
}

bool Tensor::is_contiguous() const {
  int64_t s = 1;
  for (int i = shape.ndim - 1; i >= 0; --i) {
    if (shape[i] != 1 && stride[i] != s) return false;
    s *= shape[i];
  }
  return true;
}

float* Tensor::f32() const {
  BRISK_ASSERT(dtype == DType::F32, "expected F32 tensor, got ", desc());
  return static_cast<float*>(data);
}

Tensor Tensor::reshape(Shape s) const {
  BRISK_ASSERT(is_contiguous(), "reshape of non-contiguous ", desc());
  BRISK_ASSERT(s.numel() == numel(), "reshape ", desc(), " to ", s.str());
  return Tensor(data, dtype, s, device);
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  BRISK_ASSERT(shape.ndim >= 1 && 0 <= begin && begin <= end && end <= shape[0]);
  Tensor t = *this;
  t.data = static_cast<char*>(data) + begin * dim0_stride_bytes();
  t.shape[0] = end - begin;
  return t;
}

Tensor Tensor::select(int64_t i) const {
  BRISK_ASSERT(shape.ndim >= 1 && 0 <= i && i < shape[0]);
  Tensor t;
  t.data = static_cast<char*>(data) + i * dim0_stride_bytes();
  t.dtype = dtype;
  t.device = device;
  t.shape.ndim = shape.ndim - 1;
  for (int k = 1; k < shape.ndim; ++k) {
    t.shape[k - 1] = shape[k];
    t.stride[k - 1] = stride[k];
  }
  return t;
}

std::string Tensor::desc() const {
  return cat(dtype_name(dtype), shape.str(), ' ', device_name(device));
}

Buffer::Buffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  data_ = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!data_) throw Error(cat("out of host memory allocating ", bytes, " bytes"));
}
Buffer::~Buffer() { std::free(data_); }
Buffer::Buffer(Buffer&& o) noexcept : data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}
Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    std::free(data_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

HostTensor::HostTensor(DType dtype, Shape shape)
    : buf(tensor_bytes(dtype, shape)), t(buf.data(), dtype, shape) {}

}  // namespace brisk
