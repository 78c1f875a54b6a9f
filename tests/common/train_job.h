// A tiny fine-tuning job shared by the CPU trainer tests and the GPU training tests: a model
// made by init_model with a real tokenizer, six question -> answer facts in `messages` format,
// and a LoRA config that learns them in ~150 steps.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/fs.h"
#include "model/init_model.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace brisk::testing {

using nlohmann::json;

inline const std::vector<std::pair<std::string, std::string>> kFacts = {
    {"What is the code for red?", "Alpha seven"},   {"What is the code for blue?", "Bravo two"},
    {"What is the code for green?", "Charlie nine"}, {"What is the code for black?", "Delta four"},
    {"What is the code for white?", "Echo one"},     {"What is the code for gold?", "Foxtrot six"},
};

struct Job {
  TempDir dir;
  std::string model, data, out;
  Job(const std::string& arch = "llama", const std::string& tok = "llama3") {
    model = dir.path + "/model";
    data = dir.path + "/data.jsonl";
    out = dir.path + "/out";
    InitModelOptions o;
    o.arch = arch;
    o.preset = "tiny";
    o.seed = 3;
    o.tokenizer_dir = tokenizer_dir(tok);
    init_model(model, o);
    std::string jsonl;
    for (auto& [q, a] : kFacts)
      jsonl += json{{"messages", {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", a}}}}}.dump() + "\n";
    write_file_atomic(data, jsonl);
  }
  train::TrainConfig config() const {
    train::TrainConfig c;
    c.base_model = model;
    c.dataset.path = data;
    c.output_dir = out;
    c.lora.r = 16;
    c.lora.alpha = 32;
    c.learning_rate = 1e-2;
    c.batch_size = 2;
    c.max_steps = 6;
    c.lr_scheduler = "constant";
    c.max_seq_length = 128;
    c.seed = 1;
    c.device = "cpu";  // the GPU tests (tests/ops) set cuda explicitly
    return c;
  }
  std::vector<json> metrics() const;
};

// The step lines (those with a loss) of a run's metrics.jsonl in output folder `out`.
inline std::vector<json> step_metrics(const std::string& out) {
  std::vector<json> lines;
  std::string s = read_file(out + "/metrics.jsonl");
  for (size_t p = 0; p < s.size();) {
    size_t nl = s.find('\n', p);
    json j = json::parse(s.substr(p, nl - p));
    if (j.contains("loss")) lines.push_back(j);
    p = nl + 1;
  }
  return lines;
}

inline std::vector<json> Job::metrics() const { return step_metrics(out); }

inline train::TrainerOptions quiet() {
  train::TrainerOptions o;
  o.quiet = true;
  return o;
}

}  // namespace brisk::testing
