// AtomicFile: streams a large file to "<path>.tmp-<pid>-<n>" and renames it over `path` on
// commit(), so readers see either the old file or the complete new one, never a partial one.
// Unlike core/fs.h's write_file_atomic it never needs the whole content in memory (weight
// files are many GB). Dropping an uncommitted AtomicFile removes the temp file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace brisk::io {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // throws brisk::Error naming path
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);  // throws on I/O errors (disk full, ...)
  uint64_t written() const { return written_; }
  // fsync, rename over the destination, fsync the folder so the rename is durable.
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

}  // namespace brisk::io
