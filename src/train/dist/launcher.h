// `brisk train CONFIG --gpus N` (torchrun-style): starts one worker process per GPU (or per
// --nproc-per-node), each a copy of this brisk with the same command line and BRISK_RANK,
// BRISK_WORLD_SIZE, BRISK_LOCAL_RANK, BRISK_MASTER_ADDR, BRISK_MASTER_PORT, BRISK_DP_BACKEND
// (and CUDA_VISIBLE_DEVICES = its GPU) in its environment; forwards SIGINT/SIGTERM to them;
// waits. If a worker dies, the others are stopped (SIGTERM, then SIGKILL after a grace period)
// and the launcher fails with one line naming the rank.
#pragma once
#include <string>
#include <vector>

namespace brisk::train {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1, node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string backend;       // BRISK_DP_BACKEND for the workers: nccl, tcp, mpi
  bool one_gpu_per_worker = false;  // set CUDA_VISIBLE_DEVICES to the worker's GPU
  double grace_s = 10;       // SIGTERM -> SIGKILL when stopping the others
};

// Runs the workers with argv (argv[0] is ignored: /proc/self/exe is started). Returns the
// workers' common exit status (0, or 130 when they all stopped on a signal); throws
// brisk::Error naming the first rank that failed otherwise.
int launch_workers(const LaunchOptions& o, const std::vector<std::string>& argv);

// This process's command line after argv[0] (/proc/self/cmdline): what the launching command
// passes on to its workers.
std::vector<std::string> this_process_arguments();

// Environment of the worker with this local rank (exposed for tests).
std::vector<std::pair<std::string, std::string>> worker_environment(const LaunchOptions& o, int local_rank,
                                                                    const char* parent_visible_devices);

}  // namespace brisk::train
