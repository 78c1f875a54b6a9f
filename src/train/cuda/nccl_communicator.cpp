// NcclCommunicator: collectives over device buffers through NCCL, one process per GPU.
//
// - libnccl.so.2 is opened at run time (dlopen): the brisk binary does not depend on NCCL's
//   200+ MB library, and a machine without it gets a one-line error only when it asks for
//   --gpus N > 1. nccl.h (CUDA toolkit) gives the types and prototypes.
// - The ncclUniqueId goes from rank 0 to the others over the TCP rendezvous (tcp_star.h) at
//   --master-addr:--master-port.
// - NVLink multicast (NVLS) stays off: NCCL_NVLS_ENABLE=0 is set before ncclCommInitRank and
//   nothing here calls cuMulticastCreate (the lent machines do not support it: KINDS.md).
// - Collectives run on this communicator's own stream; each call waits for completion while
//   polling ncclCommGetAsyncError, so a dead or hung peer becomes an error after the timeout
//   (the communicator is aborted) instead of a hang.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <glob.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "core/error.h"
#include "core/log.h"
#include "train/dist/communicator.h"
#include "train/dist/tcp_star.h"

namespace brisk::train {
namespace {

struct NcclApi {
  decltype(&ncclGetUniqueId) get_unique_id;
  decltype(&ncclCommInitRank) comm_init_rank;
  decltype(&ncclCommDestroy) comm_destroy;
  decltype(&ncclCommAbort) comm_abort;
  decltype(&ncclCommGetAsyncError) comm_get_async_error;
  decltype(&ncclAllReduce) all_reduce;
  decltype(&ncclBroadcast) broadcast;
  decltype(&ncclGetErrorString) get_error_string;
  decltype(&ncclGetVersion) get_version;
};

void* must_sym(void* lib, const char* name) {
  void* p = ::dlsym(lib, name);
  BRISK_CHECK(p, "NCCL: libnccl.so.2 has no symbol ", name, " (NCCL too old? brisk needs 2.18 or newer)");
  return p;
}

// Where NCCL may be: BRISK_NCCL_LIBRARY, the loader's path, the CUDA toolkit, and the
// nvidia-nccl-cu* Python wheel (PyTorch's NCCL, which GPU images often have instead).
std::vector<std::string> nccl_candidates() {
  std::vector<std::string> c;
  if (const char* e = std::getenv("BRISK_NCCL_LIBRARY"); e && *e) c.push_back(e);
  c.push_back("libnccl.so.2");
  c.push_back("/usr/local/cuda/lib64/libnccl.so.2");
  for (const char* pattern : {"/usr/local/lib/python3*/*-packages/nvidia/nccl/lib/libnccl.so.2",
                              "/usr/lib/python3*/*-packages/nvidia/nccl/lib/libnccl.so.2",
                              "/opt/conda/lib/python3*/site-packages/nvidia/nccl/lib/libnccl.so.2"}) {
    glob_t g{};
    if (::glob(pattern, 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) c.push_back(g.gl_pathv[i]);
    ::globfree(&g);
  }
  return c;
}

const NcclApi& nccl_api() {
  static const NcclApi api = [] {
    void* lib = nullptr;
    for (const std::string& n : nccl_candidates())
      if ((lib = ::dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL))) break;
    BRISK_CHECK(lib, "--dp-backend nccl: cannot load libnccl.so.2 (install NCCL, add its folder to LD_LIBRARY_PATH, "
                     "or set BRISK_NCCL_LIBRARY to its path)");
    NcclApi a;
    a.get_unique_id = reinterpret_cast<decltype(a.get_unique_id)>(must_sym(lib, "ncclGetUniqueId"));
    a.comm_init_rank = reinterpret_cast<decltype(a.comm_init_rank)>(must_sym(lib, "ncclCommInitRank"));
    a.comm_destroy = reinterpret_cast<decltype(a.comm_destroy)>(must_sym(lib, "ncclCommDestroy"));
    a.comm_abort = reinterpret_cast<decltype(a.comm_abort)>(must_sym(lib, "ncclCommAbort"));
    a.comm_get_async_error = reinterpret_cast<decltype(a.comm_get_async_error)>(must_sym(lib, "ncclCommGetAsyncError"));
    a.all_reduce = reinterpret_cast<decltype(a.all_reduce)>(must_sym(lib, "ncclAllReduce"));
    a.broadcast = reinterpret_cast<decltype(a.broadcast)>(must_sym(lib, "ncclBroadcast"));
    a.get_error_string = reinterpret_cast<decltype(a.get_error_string)>(must_sym(lib, "ncclGetErrorString"));
    a.get_version = reinterpret_cast<decltype(a.get_version)>(must_sym(lib, "ncclGetVersion"));
    return a;
  }();
  return api;
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(const DistEnv& env) : api_(nccl_api()), rank_(env.rank), size_(env.world_size),
                                                  timeout_s_(env.timeout_s) {
    // The launcher gives each worker one GPU through CUDA_VISIBLE_DEVICES; otherwise (a
    // hand-made launch) local rank r takes device r.
    int devices = 0;
    BRISK_CUDA_CHECK(cudaGetDeviceCount(&devices));
    BRISK_CHECK(devices > 0, "rank ", rank_, ": no GPU visible");
    const int device = devices == 1 ? 0 : env.local_rank;
    BRISK_CHECK(device < devices, "rank ", rank_, ": local rank ", env.local_rank, " but only ", devices, " GPUs visible");
    BRISK_CUDA_CHECK(cudaSetDevice(device));
    BRISK_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));

    ncclUniqueId id{};
    {
      TcpStar star(env);
      if (rank_ == 0) {
        check(api_.get_unique_id(&id), "ncclGetUniqueId");
        for (int r = 1; r < size_; ++r) star.send(r, &id, sizeof id);
      } else {
        star.recv(0, &id, sizeof id);
      }
    }
    ::setenv("NCCL_NVLS_ENABLE", "0", 1);  // never NVLink multicast (see the top of this file)
    check(api_.comm_init_rank(&comm_, size_, id, rank_), "ncclCommInitRank");
    int version = 0;
    check(api_.get_version(&version), "ncclGetVersion");
    if (rank_ == 0) log_info("NCCL ", version, ": ", size_, " ranks");
  }
  ~NcclCommunicator() override {
    if (comm_) aborted_ ? api_.comm_abort(comm_) : api_.comm_destroy(comm_);
    if (scratch_) cudaFree(scratch_);
    if (stream_) cudaStreamDestroy(stream_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }
  bool device_buffers() const override { return true; }

  void all_reduce_sum(float* data, size_t n) override {
    check(api_.all_reduce(data, data, n, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce");
    wait("ncclAllReduce");
  }
  void all_reduce_sum_f64(double* data, size_t n) override {
    void* d = scratch(n * sizeof(double));
    BRISK_CUDA_CHECK(cudaMemcpyAsync(d, data, n * sizeof(double), cudaMemcpyHostToDevice, stream_));
    check(api_.all_reduce(d, d, n, ncclFloat64, ncclSum, comm_, stream_), "ncclAllReduce");
    BRISK_CUDA_CHECK(cudaMemcpyAsync(data, d, n * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    wait("ncclAllReduce");
  }
  void broadcast(void* data, size_t bytes, int root) override {
    void* d = scratch(bytes);
    BRISK_CUDA_CHECK(cudaMemcpyAsync(d, data, bytes, cudaMemcpyHostToDevice, stream_));
    check(api_.broadcast(d, d, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
    BRISK_CUDA_CHECK(cudaMemcpyAsync(data, d, bytes, cudaMemcpyDeviceToHost, stream_));
    wait("ncclBroadcast");
  }
  void barrier() override {
    double one = 1;
    all_reduce_sum_f64(&one, 1);
  }

 private:
  void check(ncclResult_t r, const char* call) {
    if (r == ncclSuccess) return;
    throw Error(cat(call, " failed on rank ", rank_, ": ", api_.get_error_string(r)));
  }
  void* scratch(size_t bytes) {
    if (bytes > scratch_bytes_) {
      if (scratch_) BRISK_CUDA_CHECK(cudaFree(scratch_));
      scratch_ = nullptr;
      BRISK_CUDA_CHECK(cudaMalloc(&scratch_, bytes));
      scratch_bytes_ = bytes;
    }
    return scratch_;
  }
  // Waits for this communicator's stream, watching for NCCL's asynchronous errors (a peer
  // that died) and for the timeout (a peer that hangs).
  void wait(const char* call) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
    for (;;) {
      cudaError_t e = cudaStreamQuery(stream_);
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady) BRISK_CUDA_CHECK(e);
      ncclResult_t async = ncclSuccess;
      check(api_.comm_get_async_error(comm_, &async), "ncclCommGetAsyncError");
      if (async != ncclSuccess) {
        aborted_ = true;
        throw Error(cat(call, " failed on rank ", rank_, ": ", api_.get_error_string(async), " (did another rank die?)"));
      }
      if (std::chrono::steady_clock::now() > deadline) {
        aborted_ = true;
        throw Error(cat(call, " on rank ", rank_, " did not complete within ", timeout_s_,
                        " s: another rank died or hangs (BRISK_DIST_TIMEOUT_S sets the limit)"));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  const NcclApi& api_;
  int rank_, size_;
  double timeout_s_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
  bool aborted_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const DistEnv& env) { return std::make_unique<NcclCommunicator>(env); }

}  // namespace brisk::train
