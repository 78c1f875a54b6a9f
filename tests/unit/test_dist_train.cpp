// Data-parallel training end to end on the CPU, through the real `brisk train` processes.
//
// Floating-point sums depend on their order. One process accumulates a step's micro-batch
// gradients as ((g0 + g1) + g2) + g3; two ranks as (g0 + g2) + (g1 + g3). With one micro-batch
// per rank the orders coincide (g0 + g1 both ways), so N ranks must then reproduce one process
// BIT FOR BIT: losses, gradient norms, adapter. With several micro-batches per rank only the
// rounding differs; AdamW divides by sqrt(v), which turns rounding-level differences in
// near-zero gradients into update-sized ones, so those runs are compared on the first step
// (exact loss, gradient norm to 1e-6) and on the curve (1e-4).
//
// Also: the same under mpirun (OpenMPI), ZeRO-1 equal to plain data parallelism bit for bit,
// resume with another number of ranks, and a killed worker stopping the run with a message
// naming it while the last checkpoint stays intact.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/test_util.h"
#include "common/train_job.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace brisk {
namespace {

using nlohmann::json;
using testing::Job;

std::string write_config(const Job& job, const train::TrainConfig& c, const std::string& name) {
  std::string path = job.dir.path + "/" + name + ".json";
  write_file_atomic(path, train::to_json(c).dump(2));
  return path;
}

// `brisk train CONFIG --quiet EXTRA`, stdout+stderr into *log.
int brisk_train(const std::string& cfg, const std::string& extra, std::string* log) {
  return testing::run_command(testing::brisk_binary() + " train " + cfg + " --quiet " + extra + " 2>&1", log);
}

std::string tcp_ranks(int n) { return "--nproc-per-node " + std::to_string(n) + " --master-port " + std::to_string(testing::free_port()); }

bool have_mpirun() { return testing::run_command("command -v mpirun >/dev/null 2>&1") == 0; }

// Global batch of `global` rows, batch_size 1: grad_accum = global / ranks.
train::TrainConfig base_config(const Job& job, const std::string& out, int64_t global, int ranks) {
  train::TrainConfig c = job.config();
  c.output_dir = job.dir.path + "/" + out;
  c.batch_size = 1;
  c.grad_accum = global / ranks;
  c.max_steps = 5;
  c.learning_rate = 1e-2;
  return c;
}

void expect_close_rel(double a, double b, double tol, const std::string& what) {
  double rel = std::fabs(a - b) / std::max(std::fabs(b), 1e-30);
  EXPECT_LE(rel, tol) << what << ": " << a << " vs " << b;
}

// Same loss and gradient-norm sequence (relative), printed.
void expect_same_curve(const std::vector<json>& a, const std::vector<json>& b, double tol, size_t first = 0) {
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = first; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["step"], b[i]["step"]);
    for (const char* k : {"loss", "grad_norm"}) {
      double x = a[i][k], y = b[i][k];
      worst = std::max(worst, std::fabs(x - y) / std::fabs(y));
      expect_close_rel(x, y, tol, std::string(k) + " at step " + std::to_string(i + 1));
    }
    EXPECT_EQ(a[i]["tokens"], b[i]["tokens"]) << "the global batch differs at step " << i + 1;
  }
  std::printf("[dp curve] %zu steps, worst relative difference in loss / grad norm %.3g\n", a.size(), worst);
}

// Largest |a - b| over every tensor of two safetensors files (same names, same sizes).
double max_abs_diff(const std::string& fa, const std::string& fb) {
  auto a = io::SafeTensorsFile::open(fa), b = io::SafeTensorsFile::open(fb);
  EXPECT_EQ(a.names(), b.names());
  double worst = 0;
  for (const std::string& n : a.names()) {
    std::vector<float> x(size_t(a.info(n).numel())), y(size_t(b.info(n).numel()));
    EXPECT_EQ(x.size(), y.size()) << n;
    if (x.size() != y.size()) return INFINITY;
    a.read_f32(n, x.data());
    b.read_f32(n, y.data());
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, double(std::fabs(x[i] - y[i])));
  }
  return worst;
}

TEST(DistTrain, TwoRanksMatchOneProcessBitForBit) {
  Job job;  // 6 rows, global batch 2: 3 steps per epoch, 5 steps cross an epoch boundary
  std::string log;
  auto c1 = base_config(job, "one", 2, 1);
  ASSERT_EQ(brisk_train(write_config(job, c1, "one"), "", &log), 0) << log;
  auto c2 = base_config(job, "two", 2, 2);
  ASSERT_EQ(brisk_train(write_config(job, c2, "two"), tcp_ranks(2) + " --replica-check-steps 1", &log), 0) << log;
  expect_same_curve(testing::step_metrics(c2.output_dir), testing::step_metrics(c1.output_dir), 0.0);
  double d = max_abs_diff(c1.output_dir + "/adapter_model.safetensors", c2.output_dir + "/adapter_model.safetensors");
  std::printf("[dp adapter] max |2 ranks - 1 process| = %.3g\n", d);
  EXPECT_EQ(d, 0.0);
  // Training moved (the comparison is not between two untouched initialisations).
  auto m = testing::step_metrics(c1.output_dir);
  EXPECT_LT(m.back()["loss"].get<double>(), 0.9 * m.front()["loss"].get<double>());
  EXPECT_EQ(testing::step_metrics(c2.output_dir).size(), 5u);  // rank 0 alone writes metrics
}

TEST(DistTrain, SeveralMicroBatchesPerRankDifferOnlyByRounding) {
  Job job;  // global batch 4 over 6 rows: every second step is a short batch of 2
  std::string log;
  auto c1 = base_config(job, "one", 4, 1);
  ASSERT_EQ(brisk_train(write_config(job, c1, "one"), "", &log), 0) << log;
  auto c2 = base_config(job, "two", 4, 2);
  ASSERT_EQ(brisk_train(write_config(job, c2, "two"), tcp_ranks(2), &log), 0) << log;
  auto m1 = testing::step_metrics(c1.output_dir), m2 = testing::step_metrics(c2.output_dir);
  ASSERT_EQ(m1.size(), 5u);
  ASSERT_EQ(m2.size(), 5u);
  EXPECT_EQ(m2[0]["loss"].get<double>(), m1[0]["loss"].get<double>());  // no update yet: same sum of losses
  expect_close_rel(m2[0]["grad_norm"], m1[0]["grad_norm"], 1e-6, "grad norm at step 1");
  expect_same_curve(m2, m1, 1e-4);
}

TEST(DistTrain, MpiRanksMatchOneProcess) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)";
  Job job;
  std::string log;
  auto c1 = base_config(job, "one", 2, 1);
  ASSERT_EQ(brisk_train(write_config(job, c1, "one"), "", &log), 0) << log;
  auto c2 = base_config(job, "mpi", 2, 2);
  // --bind-to none: pinned to one core each, the ranks' thread pools would split work
  // differently from the single process (same result up to rounding, not bit for bit).
  std::string cmd = "mpirun --oversubscribe --allow-run-as-root --bind-to none -np 2 " + testing::brisk_binary() + " train " +
                    write_config(job, c2, "mpi") + " --quiet --dp-backend mpi 2>&1";
  ASSERT_EQ(testing::run_command(cmd, &log), 0) << log;
  expect_same_curve(testing::step_metrics(c2.output_dir), testing::step_metrics(c1.output_dir), 0.0);
  double d = max_abs_diff(c1.output_dir + "/adapter_model.safetensors", c2.output_dir + "/adapter_model.safetensors");
  std::printf("[dp adapter, mpi] max |2 ranks - 1 process| = %.3g\n", d);
  EXPECT_EQ(d, 0.0);
}

TEST(DistTrain, Zero1EqualsPlainDataParallelForFullFineTuning) {
  Job job;
  std::string log, zlog;
  auto c = base_config(job, "plain", 4, 2);
  c.method = "full";
  c.learning_rate = 1e-3;
  c.max_steps = 2;
  ASSERT_EQ(brisk_train(write_config(job, c, "plain"), tcp_ranks(2), &log), 0) << log;
  auto z = c;
  z.output_dir = job.dir.path + "/zero";
  ASSERT_EQ(brisk_train(write_config(job, z, "zero"), tcp_ranks(2) + " --zero 1", &zlog), 0) << zlog;
  // Bit for bit: the model, and the optimizer state gathered into the checkpoint.
  EXPECT_EQ(read_file(c.output_dir + "/model.safetensors"), read_file(z.output_dir + "/model.safetensors"));
  EXPECT_EQ(read_file(c.output_dir + "/checkpoints/checkpoint-2/optimizer.safetensors"),
            read_file(z.output_dir + "/checkpoints/checkpoint-2/optimizer.safetensors"));
  // The optimizer state per rank halves (shards by tensor: within one tensor of half).
  size_t at = zlog.find("ZeRO-1: optimizer state ");
  ASSERT_NE(at, std::string::npos) << zlog;
  std::printf("[zero1] %s\n", zlog.substr(at, zlog.find('\n', at) - at).c_str());
  long long mine = 0, full = 0;
  ASSERT_EQ(std::sscanf(zlog.c_str() + at, "ZeRO-1: optimizer state %lld KiB on rank 0 (%lld KiB unsharded", &mine, &full), 2);
  EXPECT_LT(mine, full * 3 / 4);
  EXPECT_GT(mine, full / 4);
}

TEST(DistTrain, ResumesWithAnotherNumberOfRanks) {
  Job job;
  std::string log;
  auto straight = base_config(job, "straight", 2, 1);
  straight.max_steps = 6;
  ASSERT_EQ(brisk_train(write_config(job, straight, "straight"), "", &log), 0) << log;

  struct Case {
    const char* name;
    int first_ranks, then_ranks;
  };
  for (Case k : {Case{"1to2", 1, 2}, Case{"2to1", 2, 1}}) {
    SCOPED_TRACE(k.name);
    auto a = base_config(job, k.name, 2, k.first_ranks);
    a.max_steps = 6;
    a.save_steps = 3;
    std::string cfg_a = write_config(job, a, std::string(k.name) + "_a");
    ASSERT_EQ(brisk_train(cfg_a, k.first_ranks > 1 ? tcp_ranks(k.first_ranks) : "", &log), 0) << log;
    std::filesystem::remove_all(a.output_dir + "/checkpoints/checkpoint-6");
    std::filesystem::remove(a.output_dir + "/adapter_model.safetensors");

    auto b = a;
    b.grad_accum = 2 / k.then_ranks;  // the same global batch of 2 rows
    std::string cfg_b = write_config(job, b, std::string(k.name) + "_b");
    // A different global batch is refused, naming the fix.
    auto bad = b;
    bad.grad_accum = 2;
    if (k.then_ranks > 1) {
      EXPECT_NE(brisk_train(write_config(job, bad, "bad"), tcp_ranks(k.then_ranks) + " --resume", &log), 0);
      EXPECT_NE(log.find("keep the global batch"), std::string::npos) << log;
    }
    ASSERT_EQ(brisk_train(cfg_b, (k.then_ranks > 1 ? tcp_ranks(k.then_ranks) : std::string()) + " --resume", &log), 0)
        << log;
    expect_same_curve(testing::step_metrics(a.output_dir), testing::step_metrics(straight.output_dir), 0.0);
    double d = max_abs_diff(straight.output_dir + "/adapter_model.safetensors", a.output_dir + "/adapter_model.safetensors");
    std::printf("[dp resume %s] max |adapter - straight run| = %.3g\n", k.name, d);
    EXPECT_EQ(d, 0.0);
  }
}

// The pid of the child of `parent` whose environment has BRISK_RANK=rank (0 if none yet).
pid_t worker_pid(pid_t parent, int rank) {
  const std::string want = "BRISK_RANK=" + std::to_string(rank);
  for (auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string n = e.path().filename().string();
    if (n.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string pid, comm, state;
    long ppid = 0;
    if (!(stat >> pid >> comm >> state >> ppid) || ppid != parent) continue;
    std::ifstream env(e.path() / "environ");
    std::string all((std::istreambuf_iterator<char>(env)), std::istreambuf_iterator<char>());
    for (size_t p = 0; p < all.size();) {
      size_t z = all.find('\0', p);
      if (all.compare(p, (z == std::string::npos ? all.size() : z) - p, want) == 0) return pid_t(std::stol(n));
      if (z == std::string::npos) break;
      p = z + 1;
    }
  }
  return 0;
}

TEST(DistTrain, KilledWorkerStopsTheRunAndTheLastCheckpointSurvives) {
  Job job;
  auto c = base_config(job, "killed", 4, 2);
  c.max_steps = 400;
  c.save_steps = 2;
  std::string cfg = write_config(job, c, "killed");
  const std::string logf = job.dir.path + "/launcher.log", pidf = job.dir.path + "/launcher.pid",
                    rcf = job.dir.path + "/launcher.rc";
  // The launcher in the background: its pid and, once it ends, its exit status go to files.
  std::string bg = "(" + testing::brisk_binary() + " train " + cfg + " --quiet " + tcp_ranks(2) + " > " + logf +
                   " 2>&1 & echo $! > " + pidf + "; wait $!; echo $? > " + rcf + ") > /dev/null 2>&1 &";
  ASSERT_EQ(testing::run_command(bg), 0);
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + std::chrono::seconds(90);
  while (!std::filesystem::exists(c.output_dir + "/checkpoints/checkpoint-4") && clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(std::filesystem::exists(c.output_dir + "/checkpoints/checkpoint-4")) << read_file(logf);
  pid_t launcher = pid_t(std::stol(read_file(pidf)));
  pid_t victim = worker_pid(launcher, 1);
  ASSERT_GT(victim, 0);
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  while (!std::filesystem::exists(rcf) && clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(std::filesystem::exists(rcf)) << "the launcher did not stop";
  std::string rc = read_file(rcf), log = read_file(logf);
  std::printf("[killed worker] launcher exit %s     %s", rc.c_str(), log.substr(log.rfind("brisk: error")).c_str());
  EXPECT_NE(std::stoi(rc), 0);
  EXPECT_NE(log.find("rank 1 (pid " + std::to_string(victim) + ") was killed by signal 9"), std::string::npos) << log;
  EXPECT_EQ(worker_pid(launcher, 0), 0) << "rank 0 outlived the launcher";
  // The newest checkpoint is complete and loads.
  std::string last = train::latest_checkpoint(c.output_dir);
  ASSERT_FALSE(last.empty());
  json st = json::parse(read_file(last + "/trainer_state.json"));
  EXPECT_GE(st["step"].get<int64_t>(), 4);
  EXPECT_GT(io::SafeTensorsFile::open(last + "/adapter_model.safetensors").names().size(), 0u);
  EXPECT_GT(io::SafeTensorsFile::open(last + "/optimizer.safetensors").names().size(), 0u);
}

TEST(DistTrain, MoreGpusThanVisibleIsOneLineError) {
  Job job;
  for (bool in_config : {false, true}) {
    std::string log;
    auto c = job.config();
    if (in_config) c.gpus = "64";
    int rc = brisk_train(write_config(job, c, "g"), in_config ? "" : "--gpus 64", &log);
    EXPECT_EQ(rc, 1);
    EXPECT_NE(log.find("--gpus 64: only "), std::string::npos) << log;
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  }
  EXPECT_THROW(train::parse_train_config("gpus: two\n", "x.yaml"), Error);
  EXPECT_THROW(train::parse_train_config("gpus: 0\n", "x.yaml"), Error);
  EXPECT_EQ(train::parse_train_config("gpus: all\n", "x.yaml").gpus, "all");
}

}  // namespace
}  // namespace brisk
