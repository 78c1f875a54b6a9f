#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace brisk {
namespace {

class Pool {
 public:
  explicit Pool(int n) {
    for (int i = 0; i < n; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return int(workers_.size()); }

  // Runs job(i) for i in [0, njobs); the caller takes part. Exceptions are rethrown here.
  void run(int njobs, const std::function<void(int)>& job) {
    std::unique_lock<std::mutex> l(m_);
    job_ = &job;
    njobs_ = njobs;
    next_.store(0);
    pending_ = njobs;
    error_ = nullptr;
    ++generation_;
    l.unlock();
    cv_.notify_all();
    work();
    l.lock();
    done_cv_.wait(l, [&] { return pending_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void work() {
    for (;;) {
      int i = next_.fetch_add(1);
      if (i >= njobs_) return;
      try {
        (*job_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> l(m_);
        if (!error_) error_ = std::current_exception();
      }
      std::lock_guard<std::mutex> l(m_);
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      std::unique_lock<std::mutex> l(m_);
      cv_.wait(l, [&] { return stop_ || (generation_ != seen && job_ != nullptr); });
      if (stop_) return;
      seen = generation_;
      l.unlock();
      work();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  int njobs_ = 0;
  std::atomic<int> next_{0};
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

int g_threads = 0;
thread_local bool t_inside = false;
std::mutex g_pool_mutex;  // one parallel_for at a time on the shared pool

int default_threads() {
  if (const char* e = std::getenv("BRISK_THREADS")) {
    int n = std::atoi(e);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

Pool& pool() {
  static Pool p(num_threads() - 1);
  return p;
}

}  // namespace

int num_threads() {
  if (g_threads <= 0) g_threads = default_threads();
  return g_threads;
}

void set_num_threads(int n) { g_threads = std::max(1, n); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t max_chunks = (n + grain - 1) / grain;
  int nt = num_threads();
  if (t_inside || nt <= 1 || max_chunks <= 1) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> serial(g_pool_mutex, std::try_to_lock);
  if (!serial.owns_lock()) {  // another thread is using the pool: run inline rather than wait
    fn(0, n);
    return;
  }
  int chunks = int(std::min<int64_t>(max_chunks, int64_t(nt)));
  int64_t per = (n + chunks - 1) / chunks;
  std::function<void(int)> job = [&](int c) {
    int64_t b = c * per, e = std::min(n, b + per);
    if (b >= e) return;
    t_inside = true;
    try {
      fn(b, e);
    } catch (...) {
      t_inside = false;
      throw;
    }
    t_inside = false;
  };
  pool().run(chunks, job);
}

}  // namespace brisk
