// Data-parallel training on GPUs through NCCL (train/cuda/nccl_communicator.cpp), through the
// real `brisk train` processes. One GPU: `--gpus 1 --dp-backend nccl` (a launched worker, the
// TCP rendezvous, ncclCommInitRank, the gradient arena all-reduced on the device) follows the
// plain run. Two GPUs (skipped with fewer): 2 ranks follow one process on the same global
// batch. GPU runs are not bit for bit (the attention backward accumulates dq with atomics), so
// the loss curves are compared to 1e-3 relative, as test_cuda_train.cpp's resume test does.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cuda/device_info.h"
#include "common/test_util.h"
#include "common/train_job.h"
#include "ops_test_util.h"
#include "train/train_config.h"

namespace brisk::ops_test {
namespace {

using nlohmann::json;

// Trains cfg (with grad_accum) through the CLI; returns the metrics.
std::vector<json> train_cli(const testing::Job& job, train::TrainConfig c, const std::string& name, int64_t grad_accum,
                            const std::string& extra) {
  c.output_dir = job.dir.path + "/" + name;
  c.grad_accum = grad_accum;
  std::string cfg = job.dir.path + "/" + name + ".json";
  write_file_atomic(cfg, train::to_json(c).dump(2));
  std::string log;
  int rc = testing::run_command(testing::brisk_binary() + " train " + cfg + " --quiet " + extra + " 2>&1", &log);
  EXPECT_EQ(rc, 0) << log;
  std::printf("%s", log.c_str());
  return rc == 0 ? testing::step_metrics(c.output_dir) : std::vector<json>{};
}

void expect_close_curves(const std::vector<json>& a, const std::vector<json>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(double(a[i]["loss"]) - double(b[i]["loss"])) / std::fabs(double(b[i]["loss"])));
  std::printf("[%s] worst relative loss difference over %zu steps: %.3g\n", what, a.size(), worst);
  EXPECT_LE(worst, 1e-3);
}

train::TrainConfig gpu_config(const testing::Job& job) {
  train::TrainConfig c = job.config();
  c.device = "cuda";
  c.batch_size = 1;
  c.max_steps = 6;
  return c;
}

TEST(DistNccl, OneGpuThroughNcclFollowsThePlainRun) {
  BRISK_REQUIRE_CUDA_DEVICE();
  testing::Job job("qwen3", "qwen3");
  auto c = gpu_config(job);
  auto plain = train_cli(job, c, "plain", 2, "");
  auto nccl = train_cli(job, c, "nccl1", 2, "--gpus 1 --dp-backend nccl --master-port 29517");
  expect_close_curves(nccl, plain, "nccl 1 GPU vs plain");
}

TEST(DistNccl, TwoGpusFollowOneProcessOnTheSameGlobalBatch) {
  BRISK_REQUIRE_CUDA_DEVICE();
  if (cuda::list_devices().size() < 2) GTEST_SKIP() << "needs 2 GPUs";
  testing::Job job("qwen3", "qwen3");
  auto c = gpu_config(job);
  auto one = train_cli(job, c, "one", 2, "");
  auto two = train_cli(job, c, "two", 1, "--gpus 2 --master-port 29519 --replica-check-steps 1");
  expect_close_curves(two, one, "nccl 2 GPUs vs 1 process");
}

}  // namespace
}  // namespace brisk::ops_test
