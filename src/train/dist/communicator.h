// Collective communication for data-parallel training (docs/MULTI_GPU.md). The trainer talks
// to one Communicator; the implementations are
//   LocalCommunicator  one process: every collective is a no-op (the default path),
//   TcpCommunicator    host buffers over TCP sockets (star through rank 0; CPU runs, tests and
//                      the launcher's own tests; deterministic: rank 0 sums in rank order),
//   MpiCommunicator    host buffers through OpenMPI (`mpirun -np N brisk train ...`),
//   NcclCommunicator   device buffers through NCCL (CUDA builds; `brisk train --gpus N`).
// MPI and NCCL are loaded at run time (dlopen), so a brisk binary runs on machines that have
// neither; asking for them there is a one-line error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace brisk::train {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "local", "tcp", "mpi", "nccl"
  // Where all_reduce_sum's buffer lives: false = host memory, true = device memory (NCCL).
  virtual bool device_buffers() const = 0;
  // In-place sum over ranks of data[0..n) (host or device memory, see device_buffers()).
  virtual void all_reduce_sum(float* data, size_t n) = 0;
  // In-place sum of a few host doubles (loss sums, token counts): host memory always.
  virtual void all_reduce_sum_f64(double* data, size_t n) = 0;
  // Copies root's bytes to every rank (host memory always).
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
};

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  bool device_buffers() const override { return false; }
  void all_reduce_sum(float*, size_t) override {}
  void all_reduce_sum_f64(double*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
};

// Where this process stands in a multi-process run, from the environment the launcher (or
// mpirun) sets: BRISK_RANK, BRISK_WORLD_SIZE, BRISK_LOCAL_RANK, BRISK_MASTER_ADDR,
// BRISK_MASTER_PORT. Without BRISK_WORLD_SIZE: rank 0 of 1.
struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double timeout_s = 300;  // connect / collective timeout (BRISK_DIST_TIMEOUT_S)
};
DistEnv dist_env_from_environment();

// backend: "local" (world size 1 only), "tcp", "mpi" (rank and size from MPI, env ignored),
// "nccl" (CUDA builds; the caller has selected the device). Throws brisk::Error when the
// backend is unavailable here.
std::unique_ptr<Communicator> make_communicator(const std::string& backend, const DistEnv& env);

std::unique_ptr<Communicator> make_tcp_communicator(const DistEnv& env);
std::unique_ptr<Communicator> make_mpi_communicator();
#ifdef BRISK_HAVE_CUDA
std::unique_ptr<Communicator> make_nccl_communicator(const DistEnv& env);
#endif

}  // namespace brisk::train
