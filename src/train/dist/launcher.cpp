#include "train/dist/launcher.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"

namespace brisk::train {
namespace {

std::atomic<int> g_forward_signal{0};
extern "C" void on_launcher_signal(int sig) { g_forward_signal.store(sig); }

std::string describe_status(int status) {
  if (WIFEXITED(status)) return cat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return cat("was killed by signal ", WTERMSIG(status), " (", ::strsignal(WTERMSIG(status)), ")");
  return "stopped";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> worker_environment(const LaunchOptions& o, int local_rank,
                                                                    const char* parent_visible_devices) {
  const int world = o.nnodes * o.nproc_per_node, rank = o.node_rank * o.nproc_per_node + local_rank;
  std::vector<std::pair<std::string, std::string>> env = {
      {"BRISK_RANK", std::to_string(rank)},
      {"BRISK_WORLD_SIZE", std::to_string(world)},
      {"BRISK_LOCAL_RANK", std::to_string(local_rank)},
      {"BRISK_MASTER_ADDR", o.master_addr},
      {"BRISK_MASTER_PORT", std::to_string(o.master_port)},
      {"BRISK_DP_BACKEND", o.backend},
      {"NCCL_NVLS_ENABLE", "0"},  // never NVLink multicast (nccl_communicator.cpp says why)
  };
  if (o.one_gpu_per_worker) {
    // The local_rank-th of the GPUs this launcher may use (all of them when unrestricted).
    std::string dev = std::to_string(local_rank);
    if (parent_visible_devices && *parent_visible_devices) {
      std::string list = parent_visible_devices;
      std::vector<std::string> ids;
      for (size_t p = 0; p <= list.size();) {
        size_t c = list.find(',', p);
        if (c == std::string::npos) c = list.size();
        ids.push_back(list.substr(p, c - p));
        p = c + 1;
      }
      BRISK_CHECK(size_t(local_rank) < ids.size(), "--gpus: CUDA_VISIBLE_DEVICES=", list, " lists ", ids.size(),
                  " GPUs, worker ", local_rank, " needs one more");
      dev = ids[size_t(local_rank)];
    }
    env.push_back({"CUDA_VISIBLE_DEVICES", dev});
  }
  return env;
}

int launch_workers(const LaunchOptions& o, const std::vector<std::string>& argv) {
  BRISK_CHECK(o.nproc_per_node >= 1 && o.nnodes >= 1 && o.node_rank >= 0 && o.node_rank < o.nnodes,
              "launcher: invalid layout (", o.nproc_per_node, " processes per node, node ", o.node_rank, " of ",
              o.nnodes, ")");
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  std::vector<std::vector<std::pair<std::string, std::string>>> envs;
  for (int l = 0; l < o.nproc_per_node; ++l) envs.push_back(worker_environment(o, l, visible));

  g_forward_signal.store(0);
  struct sigaction sa {}, old_int{}, old_term{};
  sa.sa_handler = on_launcher_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);

  std::vector<pid_t> pids(size_t(o.nproc_per_node), -1);
  const int first_rank = o.node_rank * o.nproc_per_node;
  const pid_t launcher = ::getpid();
  for (int l = 0; l < o.nproc_per_node; ++l) {
    pid_t pid = ::fork();
    BRISK_CHECK(pid >= 0, "launcher: fork failed (", std::strerror(errno), ")");
    if (pid == 0) {
      ::sigaction(SIGINT, &old_int, nullptr);
      ::sigaction(SIGTERM, &old_term, nullptr);
      // If the launcher itself is killed, the workers get SIGTERM: they stop after the same
      // step and rank 0 checkpoints, instead of training on as orphans.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != launcher) ::_exit(1);  // it died before prctl took effect
      for (auto& [k, v] : envs[size_t(l)]) ::setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> args;
      args.push_back(const_cast<char*>("brisk"));
      for (size_t i = 1; i < argv.size(); ++i) args.push_back(const_cast<char*>(argv[i].c_str()));
      args.push_back(nullptr);
      ::execv("/proc/self/exe", args.data());
      std::fprintf(stderr, "launcher: cannot start worker %d: %s\n", first_rank + l, std::strerror(errno));
      ::_exit(127);
    }
    pids[size_t(l)] = pid;
  }
  log_info("launched ", o.nproc_per_node, " workers (ranks ", first_rank, "..", first_rank + o.nproc_per_node - 1,
           " of ", o.nnodes * o.nproc_per_node, ", ", o.backend, ")");

  using clock = std::chrono::steady_clock;
  int running = o.nproc_per_node, common_status = 0, forwarded = 0;
  std::string failure;
  clock::time_point kill_at{};
  bool stopping = false;
  while (running > 0) {
    if (int sig = g_forward_signal.exchange(0); sig != 0) {
      forwarded = sig;
      for (pid_t p : pids)
        if (p > 0) ::kill(p, sig);
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (size_t l = 0; l < pids.size(); ++l) {
        if (pids[l] != pid) continue;
        pids[l] = -1;
        --running;
        const bool ok = WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 130);
        if (ok) {
          common_status = std::max(common_status, WEXITSTATUS(status));
        } else if (failure.empty()) {
          failure = cat("rank ", first_rank + int(l), " (pid ", pid, ") ", describe_status(status));
          // One rank is gone: the others would wait for it in their next collective.
          for (pid_t p : pids)
            if (p > 0) ::kill(p, SIGTERM);
          stopping = true;
          kill_at = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.grace_s));
        }
      }
      continue;
    }
    if (stopping && clock::now() >= kill_at)
      for (pid_t p : pids)
        if (p > 0) ::kill(p, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  BRISK_CHECK(failure.empty(), "data-parallel training failed: ", failure, "; stopped the other ranks");
  if (forwarded != 0 && common_status == 0) common_status = 130;
  return common_status;
}

std::vector<std::string> this_process_arguments() {
  std::string raw = read_file("/proc/self/cmdline");
  std::vector<std::string> args;
  for (size_t p = 0; p < raw.size();) {
    size_t z = raw.find('\0', p);
    if (z == std::string::npos) z = raw.size();
    args.push_back(raw.substr(p, z - p));
    p = z + 1;
  }
  if (!args.empty()) args.erase(args.begin());
  return args;
}

}  // namespace brisk::train
