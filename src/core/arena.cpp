#include "core/arena.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace brisk {

static size_t align_up(size_t n) { return (n + kArenaAlign - 1) / kArenaAlign * kArenaAlign; }

size_t MemoryPlan::total() const {
  size_t t = 0;
  for (auto& e : entries) t += align_up(e.bytes);
  return t;
}

std::string MemoryPlan::table() const {
  std::ostringstream os;
  for (auto& e : entries) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-28s %12s\n", e.name.c_str(), format_bytes(double(e.bytes)).c_str());
    os << line;
  }
  char line[160];
  std::snprintf(line, sizeof line, "  %-28s %12s\n", "total", format_bytes(double(total())).c_str());
  os << line;
  return os.str();
}

Arena::Arena(size_t capacity, Device device) : capacity_(align_up(capacity)), device_(device) {
  BRISK_ASSERT(device == Device::CPU, "CUDA arenas come with the CUDA backend");
  if (capacity_ == 0) return;
  base_ = static_cast<char*>(std::aligned_alloc(kArenaAlign, capacity_));
  if (!base_) throw Error(cat("cannot allocate ", format_bytes(double(capacity_)), " of host memory"));
}

Arena::~Arena() { std::free(base_); }

Arena::Arena(Arena&& o) noexcept
    : base_(o.base_), capacity_(o.capacity_), used_(o.used_), device_(o.device_) {
  o.base_ = nullptr;
  o.capacity_ = o.used_ = 0;
}

Arena& Arena::operator=(Arena&& o) noexcept {
  if (this != &o) {
    std::free(base_);
    base_ = o.base_;
    capacity_ = o.capacity_;
    used_ = o.used_;
    device_ = o.device_;
    o.base_ = nullptr;
    o.capacity_ = o.used_ = 0;
  }
  return *this;
}

void* Arena::alloc(size_t bytes) {
  size_t n = align_up(bytes);
  BRISK_ASSERT(used_ + n <= capacity_, "arena overflow: plan too small (need ", used_ + n,
               " bytes, have ", capacity_, ")");
  void* p = base_ + used_;
  used_ += n;
  return p;
}

std::string format_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) { b /= 1024; ++u; }
  char s[32];
  std::snprintf(s, sizeof s, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return s;
}

}  // namespace brisk
