// A fixed pool of worker threads for data-parallel loops on the CPU backend.
// parallel_for splits [0, n) into contiguous chunks, runs them on the pool and the calling
// thread, and returns when all are done. Nested calls run serially (no oversubscription).
#pragma once
#include <cstdint>
#include <functional>

namespace brisk {

// Number of threads the CPU backend uses (default: hardware concurrency; BRISK_THREADS
// environment variable or set_num_threads override it).
int num_threads();
void set_num_threads(int n);

// fn(begin, end) over chunks of [0, n); grain = smallest chunk worth a thread.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace brisk
