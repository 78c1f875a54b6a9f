// MpiCommunicator: host-buffer collectives through OpenMPI, for CPU data-parallel runs under
// `mpirun -np N brisk train CONFIG --dp-backend mpi` (rank and world size come from MPI).
//
// libmpi is opened at run time (dlopen, RTLD_GLOBAL: OpenMPI's plugins resolve symbols from
// it), so the brisk binary does not depend on it. We compile against OpenMPI's mpi.h for the
// types and prototypes; its predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are
// addresses of global objects in libmpi, looked up here by their OpenMPI names.
#include "train/dist/communicator.h"

#include "core/error.h"

#ifdef BRISK_HAVE_MPI_H
#define OMPI_SKIP_MPICXX 1  // the C API only
#include <dlfcn.h>
#include <mpi.h>

#include <algorithm>
#include <vector>

namespace brisk::train {
namespace {

struct MpiApi {
  decltype(&MPI_Initialized) initialized;
  decltype(&MPI_Init) init;
  decltype(&MPI_Finalized) finalized;
  decltype(&MPI_Finalize) finalize;
  decltype(&MPI_Comm_rank) comm_rank;
  decltype(&MPI_Comm_size) comm_size;
  decltype(&MPI_Allreduce) allreduce;
  decltype(&MPI_Bcast) bcast;
  decltype(&MPI_Barrier) barrier;
  decltype(&MPI_Error_string) error_string;
  MPI_Comm world;
  MPI_Datatype f32, f64, byte;
  MPI_Op sum;
};

void* must_sym(void* lib, const char* name) {
  void* p = ::dlsym(lib, name);
  BRISK_CHECK(p, "--dp-backend mpi: libmpi has no symbol ", name, " (not OpenMPI?)");
  return p;
}

const MpiApi& mpi_api() {
  static const MpiApi api = [] {
    void* lib = nullptr;
    for (const char* n : {"libmpi.so.40", "libmpi.so"})
      if ((lib = ::dlopen(n, RTLD_NOW | RTLD_GLOBAL))) break;
    BRISK_CHECK(lib, "--dp-backend mpi: cannot load libmpi.so.40 (install OpenMPI: apt-get install openmpi-bin)");
    MpiApi a;
    a.initialized = reinterpret_cast<decltype(a.initialized)>(must_sym(lib, "MPI_Initialized"));
    a.init = reinterpret_cast<decltype(a.init)>(must_sym(lib, "MPI_Init"));
    a.finalized = reinterpret_cast<decltype(a.finalized)>(must_sym(lib, "MPI_Finalized"));
    a.finalize = reinterpret_cast<decltype(a.finalize)>(must_sym(lib, "MPI_Finalize"));
    a.comm_rank = reinterpret_cast<decltype(a.comm_rank)>(must_sym(lib, "MPI_Comm_rank"));
    a.comm_size = reinterpret_cast<decltype(a.comm_size)>(must_sym(lib, "MPI_Comm_size"));
    a.allreduce = reinterpret_cast<decltype(a.allreduce)>(must_sym(lib, "MPI_Allreduce"));
    a.bcast = reinterpret_cast<decltype(a.bcast)>(must_sym(lib, "MPI_Bcast"));
    a.barrier = reinterpret_cast<decltype(a.barrier)>(must_sym(lib, "MPI_Barrier"));
    a.error_string = reinterpret_cast<decltype(a.error_string)>(must_sym(lib, "MPI_Error_string"));
    a.world = reinterpret_cast<MPI_Comm>(must_sym(lib, "ompi_mpi_comm_world"));
    a.f32 = reinterpret_cast<MPI_Datatype>(must_sym(lib, "ompi_mpi_float"));
    a.f64 = reinterpret_cast<MPI_Datatype>(must_sym(lib, "ompi_mpi_double"));
    a.byte = reinterpret_cast<MPI_Datatype>(must_sym(lib, "ompi_mpi_byte"));
    a.sum = reinterpret_cast<MPI_Op>(must_sym(lib, "ompi_mpi_op_sum"));
    return a;
  }();
  return api;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() : api_(mpi_api()) {
    int inited = 0;
    check(api_.initialized(&inited), "MPI_Initialized");
    if (!inited) check(api_.init(nullptr, nullptr), "MPI_Init");
    check(api_.comm_rank(api_.world, &rank_), "MPI_Comm_rank");
    check(api_.comm_size(api_.world, &size_), "MPI_Comm_size");
  }
  ~MpiCommunicator() override {
    int done = 0;
    if (api_.finalized(&done) == MPI_SUCCESS && !done) api_.finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  bool device_buffers() const override { return false; }
  void all_reduce_sum(float* data, size_t n) override {
    for (size_t done = 0; done < n; done += kMaxCount)
      check(api_.allreduce(MPI_IN_PLACE, data + done, int(std::min(kMaxCount, n - done)), api_.f32, api_.sum, api_.world),
            "MPI_Allreduce");
  }
  void all_reduce_sum_f64(double* data, size_t n) override {
    for (size_t done = 0; done < n; done += kMaxCount)
      check(api_.allreduce(MPI_IN_PLACE, data + done, int(std::min(kMaxCount, n - done)), api_.f64, api_.sum, api_.world),
            "MPI_Allreduce");
  }
  void broadcast(void* data, size_t bytes, int root) override {
    char* p = static_cast<char*>(data);
    for (size_t done = 0; done < bytes; done += kMaxCount)
      check(api_.bcast(p + done, int(std::min(kMaxCount, bytes - done)), api_.byte, root, api_.world), "MPI_Bcast");
  }
  void barrier() override { check(api_.barrier(api_.world), "MPI_Barrier"); }

 private:
  static constexpr size_t kMaxCount = size_t(1) << 30;  // MPI counts are int
  void check(int rc, const char* call) const {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING] = {0};
    int len = 0;
    api_.error_string(rc, msg, &len);
    throw Error(cat(call, " failed on rank ", rank_, ": ", msg));
  }
  const MpiApi& api_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace brisk::train

#else

namespace brisk::train {
std::unique_ptr<Communicator> make_mpi_communicator() {
  throw Error("--dp-backend mpi: this brisk was built without OpenMPI's headers (apt-get install libopenmpi-dev, reconfigure)");
}
}  // namespace brisk::train

#endif
