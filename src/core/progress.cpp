#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/arena.h"

namespace brisk {

Progress::Progress(std::string label, size_t total_items, uint64_t total_bytes, bool enabled)
    : label_(std::move(label)),
      total_items_(total_items),
      total_bytes_(total_bytes),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void Progress::update(size_t items, uint64_t bytes) {
  items_ = items;
  bytes_ = bytes;
  total_bytes_ = std::max(total_bytes_, bytes);  // totals that were estimates (headers, padding) never go negative
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (!tty_ && now - last_ < std::chrono::seconds(5) && items < total_items_) return;
  last_ = now;
  double el = std::chrono::duration<double>(now - start_).count();
  double frac = total_bytes_ ? double(bytes) / double(total_bytes_) : double(items) / double(std::max<size_t>(1, total_items_));
  frac = std::min(1.0, frac);
  double eta = frac > 0 ? el / frac * (1 - frac) : 0;
  std::fprintf(stderr, tty_ ? "\r%s: %zu/%zu tensors, %s / %s, ETA %.0fs\033[K" : "%s: %zu/%zu tensors, %s / %s, ETA %.0fs\n",
               label_.c_str(), items, total_items_, format_bytes(double(bytes)).c_str(),
               format_bytes(double(total_bytes_)).c_str(), eta);
}

void Progress::finish() {
  if (!enabled_) return;
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "%s%s: %zu tensors, %s in %.1fs\n", tty_ ? "\r\033[K" : "", label_.c_str(), items_,
               format_bytes(double(bytes_)).c_str(), el);
}

}  // namespace brisk
