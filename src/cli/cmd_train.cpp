// `brisk train CONFIG.yaml [--set key=value]... [--resume [CHECKPOINT]]`: fine-tunes a model.
// Data parallel (docs/MULTI_GPU.md): `--gpus N` starts N worker processes of this brisk (one
// per GPU, NCCL); `--nproc-per-node N --dp-backend tcp` does the same on CPUs; under
// `mpirun -np N brisk train ... --dp-backend mpi` every process is a rank of MPI's world.
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "train/dist/communicator.h"
#include "train/dist/launcher.h"
#include "train/train_config.h"
#include "train/trainer.h"

#ifdef BRISK_HAVE_CUDA
#include "backend/cuda/device_info.h"
#endif

namespace {

int visible_gpu_count() {
#ifdef BRISK_HAVE_CUDA
  return int(brisk::cuda::list_devices().size());
#else
  return 0;
#endif
}

brisk::cli::Registrar reg("train", "Fine-tune a model (LoRA or full) from a YAML config", [](CLI::App& app) {
  struct Args {
    std::string config;
    std::vector<std::string> sets;
    brisk::train::TrainerOptions opt;
    std::string resume;
    std::string gpus;
    int nproc_per_node = 0;
    brisk::train::LaunchOptions launch;
    std::string backend = "auto";
  };
  auto a = std::make_shared<Args>();
  app.add_option("CONFIG", a->config, "Training config (YAML or JSON; see docs/TRAINING.md)")->required();
  app.add_option("--set", a->sets, "Override a config key: key=value or section.key=value (repeatable)");
  auto* r = app.add_option("--resume", a->resume, "Continue from the newest checkpoint in output_dir, or from CHECKPOINT")
                ->expected(0, 1);
  app.add_option("--events", a->opt.events_path, "Append JSON-line progress events to this file");
  app.add_option("--events-fd", a->opt.events_fd, "Write JSON-line progress events to this file descriptor");
  app.add_flag("--quiet", a->opt.quiet, "No progress line");
  app.add_option("--gpus", a->gpus, "Data-parallel training on N GPUs of this host (N or all): one worker each, NCCL");
  app.add_option("--nproc-per-node", a->nproc_per_node, "Worker processes on this host (CPU runs: with --dp-backend tcp)");
  app.add_option("--nnodes", a->launch.nnodes, "Hosts taking part (multi-host: run the same command on each)");
  app.add_option("--node-rank", a->launch.node_rank, "This host's index, 0..nnodes-1 (host 0 runs rank 0)");
  app.add_option("--master-addr", a->launch.master_addr, "Address of host 0 (rank 0 listens there)");
  app.add_option("--master-port", a->launch.master_port, "Port rank 0 listens on for the rendezvous");
  app.add_option("--dp-backend", a->backend, "Collectives: auto (nccl for --gpus, else tcp), nccl, tcp, mpi (under mpirun)");
  app.add_option("--zero", a->opt.zero_stage, "1: shard the AdamW moments over the ranks (ZeRO stage 1; CPU engine)");
  app.add_option("--replica-check-steps", a->opt.replica_check_steps,
                 "Check every K steps that all ranks hold identical parameters (0: at checkpoints and the end)");
  return [a, r]() -> int {
    using namespace brisk::train;
    using brisk::Error;
    TrainConfig cfg = load_train_config(a->config);
    for (const std::string& s : a->sets) apply_override(cfg, s);
    a->opt.resume = r->count() > 0;
    a->opt.resume_from = a->resume;

    std::unique_ptr<Communicator> comm;
    const char* worker_backend = std::getenv("BRISK_DP_BACKEND");
    if (worker_backend && *worker_backend && std::getenv("BRISK_WORLD_SIZE")) {
      // A worker started by the launcher below (possibly on another host).
      comm = make_communicator(worker_backend, dist_env_from_environment());
    } else if (a->backend == "mpi") {
      comm = make_communicator("mpi", DistEnv{});
    } else if (a->backend != "auto" && a->backend != "local" && a->gpus.empty() && a->nproc_per_node == 0 &&
               cfg.gpus == "1") {
      throw Error(brisk::cat("--dp-backend ", a->backend, ": also give --gpus N or --nproc-per-node N (or run under mpirun with --dp-backend mpi)"));
    } else {
      int n = a->nproc_per_node;
      std::string backend = a->backend == "auto" ? "tcp" : a->backend;
      if (a->gpus.empty() && cfg.gpus != "1" && n == 0) a->gpus = cfg.gpus;  // `gpus:` in the config
      if (!a->gpus.empty()) {
        BRISK_CHECK(a->nproc_per_node == 0, "--gpus and --nproc-per-node: give one of them");
        const int visible = visible_gpu_count();
        if (a->gpus == "all") {
          n = visible;
          BRISK_CHECK(n > 0, "--gpus all: no usable GPU is visible");
        } else {
          try {
            n = std::stoi(a->gpus);
          } catch (...) {
            throw Error(brisk::cat("--gpus ", a->gpus, ": expected a number or 'all'"));
          }
          BRISK_CHECK(n >= 1, "--gpus ", a->gpus, ": expected at least 1");
          BRISK_CHECK(n <= visible, "--gpus ", n, ": only ", visible, " GPU", visible == 1 ? "" : "s",
                      " visible on this host");
        }
        backend = a->backend == "auto" ? "nccl" : a->backend;
        a->launch.one_gpu_per_worker = true;
      }
      // --gpus 1 --dp-backend nccl still launches: one worker through the NCCL path.
      if (n > 1 || a->launch.nnodes > 1 || (a->launch.one_gpu_per_worker && backend == "nccl" && a->backend == "nccl")) {
        a->launch.nproc_per_node = std::max(n, 1);
        a->launch.backend = backend;
        std::vector<std::string> argv = {"brisk"};
        for (const std::string& s : brisk::train::this_process_arguments()) argv.push_back(s);
        return launch_workers(a->launch, argv);
      }
      // One process: the same training loop with a LocalCommunicator.
    }
    if (comm && comm->rank() != 0) brisk::set_log_level(brisk::LogLevel::Warn);  // rank 0 tells the story
    a->opt.comm = comm.get();
    TrainOutcome out = run_training(cfg, a->opt);
    return out == TrainOutcome::Completed ? 0 : 130;
  };
});
}  // namespace
