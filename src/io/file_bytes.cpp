#include "io/file_bytes.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace brisk::io {

std::shared_ptr<const FileBytes> FileBytes::map(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(cat("cannot open ", path, ": ", std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int e = errno;
    bool regular = S_ISREG(st.st_mode);
    ::close(fd);
    throw Error(cat("cannot read ", path, ": ", regular ? std::strerror(e) : "not a regular file"));
  }
  std::shared_ptr<FileBytes> b(new FileBytes());
  size_t size = size_t(st.st_size);
  if (size > 0) {
    // MAP_PRIVATE + PROT_READ: the file is never modified through us, and a file rewritten
    // in place by someone else is the only way views can change (our writers use rename).
    void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(cat("cannot map ", path, ": ", std::strerror(e)));
    }
    b->map_ = m;
    b->map_size_ = size;
    b->data_ = static_cast<const uint8_t*>(m);
    b->size_ = size;
  }
  ::close(fd);  // the mapping keeps the file alive
  return b;
}

std::shared_ptr<const FileBytes> FileBytes::copy(const void* data, size_t size) {
  std::shared_ptr<FileBytes> b(new FileBytes());
  b->owned_ = Buffer(size);
  if (size) std::memcpy(b->owned_.data(), data, size);
  b->data_ = static_cast<const uint8_t*>(b->owned_.data());
  b->size_ = size;
  return b;
}

FileBytes::~FileBytes() {
  if (map_) ::munmap(map_, map_size_);
}

}  // namespace brisk::io
