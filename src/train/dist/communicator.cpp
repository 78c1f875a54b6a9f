#include "train/dist/communicator.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "train/dist/tcp_star.h"

namespace brisk::train {
namespace {

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  BRISK_CHECK(end && *end == '\0' && x >= lo && x <= hi, "environment ", name, "=", v, ": expected an integer in [",
              lo, ", ", hi, "]");
  return int(x);
}

// Sums over ranks through rank 0: it adds the ranks' buffers in rank order (so every run
// rounds the same way) and sends the result back. O(world) traffic through one socket: meant
// for CPU runs and tests, not for GPUs (that is NCCL's job).
class TcpCommunicator final : public Communicator {
 public:
  explicit TcpCommunicator(const DistEnv& env) : star_(env) {}
  int rank() const override { return star_.rank(); }
  int size() const override { return star_.size(); }
  std::string backend() const override { return "tcp"; }
  bool device_buffers() const override { return false; }
  void all_reduce_sum(float* data, size_t n) override { reduce(data, n); }
  void all_reduce_sum_f64(double* data, size_t n) override { reduce(data, n); }
  void broadcast(void* data, size_t bytes, int root) override {
    BRISK_ASSERT(root >= 0 && root < size());
    if (size() == 1) return;
    if (rank() == 0) {
      if (root != 0) star_.recv(root, data, bytes);
      for (int r = 1; r < size(); ++r)
        if (r != root) star_.send(r, data, bytes);
    } else {
      if (rank() == root) star_.send(0, data, bytes);
      else star_.recv(0, data, bytes);
    }
  }
  void barrier() override {
    double one = 1;
    reduce(&one, 1);
  }

 private:
  template <class T>
  void reduce(T* data, size_t n) {
    if (size() == 1 || n == 0) return;
    if (rank() == 0) {
      std::vector<T> in(n);
      for (int r = 1; r < size(); ++r) {
        star_.recv(r, in.data(), n * sizeof(T));
        for (size_t i = 0; i < n; ++i) data[i] += in[i];
      }
      for (int r = 1; r < size(); ++r) star_.send(r, data, n * sizeof(T));
    } else {
      star_.send(0, data, n * sizeof(T));
      star_.recv(0, data, n * sizeof(T));
    }
  }
  TcpStar star_;
};

}  // namespace

DistEnv dist_env_from_environment() {
  DistEnv e;
  e.world_size = env_int("BRISK_WORLD_SIZE", 1, 1, 1 << 16);
  e.rank = env_int("BRISK_RANK", 0, 0, e.world_size - 1);
  e.local_rank = env_int("BRISK_LOCAL_RANK", e.rank, 0, 1 << 16);
  if (const char* a = std::getenv("BRISK_MASTER_ADDR"); a && *a) e.master_addr = a;
  e.master_port = env_int("BRISK_MASTER_PORT", e.master_port, 1, 65535);
  e.timeout_s = env_int("BRISK_DIST_TIMEOUT_S", int(e.timeout_s), 1, 1 << 20);
  return e;
}

std::unique_ptr<Communicator> make_tcp_communicator(const DistEnv& env) {
  return std::make_unique<TcpCommunicator>(env);
}

std::unique_ptr<Communicator> make_communicator(const std::string& backend, const DistEnv& env) {
  if (backend == "local") {
    BRISK_CHECK(env.world_size == 1, "--dp-backend local runs one process, but the world size is ", env.world_size);
    return std::make_unique<LocalCommunicator>();
  }
  if (backend == "tcp") return make_tcp_communicator(env);
  if (backend == "mpi") return make_mpi_communicator();
  if (backend == "nccl") {
#ifdef BRISK_HAVE_CUDA
    return make_nccl_communicator(env);
#else
    throw Error("--dp-backend nccl: this brisk was built without CUDA (CPU-only build); use tcp or mpi");
#endif
  }
  throw Error(cat("--dp-backend ", backend, ": unknown (expected local, tcp, mpi or nccl)"));
}

}  // namespace brisk::train
