// Read-only bytes of a whole file (memory-mapped, so multi-GB weights cost no copy) or a private
// aligned copy of a buffer (tests, fuzzers). Shared by the safetensors and GGUF readers, whose
// tensor views keep it alive.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace brisk::io {

class FileBytes {
 public:
  // Throws brisk::Error naming the path (missing, unreadable, not a regular file, mmap failure).
  static std::shared_ptr<const FileBytes> map(const std::string& path);
  static std::shared_ptr<const FileBytes> copy(const void* data, size_t size);
  ~FileBytes();
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  FileBytes() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  Buffer owned_;
};

}  // namespace brisk::io
