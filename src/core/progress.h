// A progress line for long work (export, conversion): items and bytes done, rate, ETA.
// Redraws in place on a terminal; on a pipe prints a line at most every few seconds.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace brisk {

class Progress {
 public:
  Progress(std::string label, size_t total_items, uint64_t total_bytes, bool enabled = true);
  void update(size_t items_done, uint64_t bytes_done);
  void finish();  // final line with totals

 private:
  std::string label_;
  size_t total_items_;
  uint64_t total_bytes_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_;
  size_t items_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace brisk
