// `brisk train` as a user runs it: SIGINT saves a checkpoint and exits, --resume finishes the
// run; an adapter for another base model is refused with both shapes named.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "io/hf_config.h"
#include "model/init_model.h"
#include "model/lora.h"
#include "train/trainer.h"

namespace brisk {
namespace {

TEST(TrainCli, SigintCheckpointsAndResumeFinishes) {
  testing::TempDir t;
  InitModelOptions o;
  o.arch = "qwen3";
  o.preset = "tiny";
  o.tokenizer_dir = testing::tokenizer_dir("qwen3");
  init_model(t.path + "/base", o);
  std::string rows;
  for (int i = 0; i < 8; ++i)
    rows += nlohmann::json{{"instruction", "Say " + std::to_string(i)}, {"output", std::to_string(i * 7)}}.dump() + "\n";
  write_file_atomic(t.path + "/data.jsonl", rows);
  write_file_atomic(t.path + "/cfg.yaml", "base_model: " + t.path + "/base\ndataset: " + t.path +
                                              "/data.jsonl\noutput_dir: " + t.path +
                                              "/out\nmax_steps: 100000\nbatch_size: 2\nlora: {r: 4}\n");
  std::string ev = t.path + "/events.jsonl";
  std::string cmd = cat("cd ", t.path, " && (", BRISK_BINARY, " train cfg.yaml --quiet --events ", ev,
                        " 2>/dev/null & pid=$!; for i in $(seq 1 600); do grep -q '\"step\"' ", ev,
                        " 2>/dev/null && break; sleep 0.05; done; kill -INT $pid; wait $pid; echo rc=$?)");
  std::string out;
  testing::run_command(cmd, &out);
  EXPECT_NE(out.find("rc=130"), std::string::npos) << out;
  std::string ck = train::latest_checkpoint(t.path + "/out");
  ASSERT_FALSE(ck.empty()) << "no checkpoint after SIGINT";
  EXPECT_NE(read_file(ev).find("\"stopped\""), std::string::npos);

  // Resume with a reachable end (two more steps): it continues from the checkpoint's step.
  int64_t step = std::stoll(ck.substr(ck.rfind('-') + 1));
  std::string out2;
  int rc = testing::run_command(cat("cd ", t.path, " && ", BRISK_BINARY, " train cfg.yaml --quiet --resume --set max_steps=",
                           step + 2, " 2>&1"), &out2);
  EXPECT_EQ(rc, 0) << out2;
  EXPECT_NE(out2.find(cat("at step ", step)), std::string::npos) << out2;
  EXPECT_TRUE(file_exists(t.path + "/out/adapter_model.safetensors"));
}

TEST(TrainCli, AdapterForAnotherBaseModelIsRefused) {
  testing::TempDir t;
  InitModelOptions a, b;
  a.arch = "qwen3";
  b.arch = "llama";
  a.preset = b.preset = "tiny";
  init_model(t.path + "/qwen", a);
  init_model(t.path + "/llama", b);
  ModelConfig qc = io::load_model_config(t.path + "/qwen"), lc = io::load_model_config(t.path + "/llama");
  LoraSpec s;
  s.r = 4;
  s.targets.fill(true);
  save_peft_adapter(init_lora(qc, s, 1), qc, t.path + "/ad", "qwen");
  try {
    load_peft_adapter(t.path + "/ad", lc);
    FAIL() << "expected a shape error";
  } catch (const Error& e) {
    std::string m = e.what();
    std::printf("[adapter mismatch] %s\n", m.c_str());
    EXPECT_NE(m.find("has shape"), std::string::npos) << m;
    EXPECT_NE(m.find("different base model"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace brisk

namespace brisk {
namespace {
// `brisk bench train --gpus N`: data parallel only on the GPU, and never more workers than GPUs.
TEST(TrainCli, BenchTrainGpusIsCheckedBeforeAnythingStarts) {
  std::string out;
  EXPECT_NE(testing::run_command(cat(BRISK_BINARY, " bench train --gpus 2 2>&1"), &out), 0);
  EXPECT_NE(out.find("--gpus: data-parallel benchmarks run with --device cuda"), std::string::npos) << out;
  out.clear();
  EXPECT_NE(testing::run_command(cat(BRISK_BINARY, " bench train --device cuda --gpus 64 2>&1"), &out), 0);
  EXPECT_TRUE(out.find("--gpus 64: only ") != std::string::npos || out.find("without CUDA") != std::string::npos)
      << out;
}
}  // namespace
}  // namespace brisk
