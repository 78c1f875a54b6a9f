// TrainConfig: full YAML and JSON documents, every alias, the shorthands, each error message
// (unknown keys with and without suggestions, wrong types and ranges with line numbers, bad
// enum values listing the valid ones, malformed YAML with its position), --set overrides,
// validate()'s cross-field rules, and the to_json -> parse round trip.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/test_util.h"
#include "core/error.h"
#include "core/fs.h"
#include "train/train_config.h"

namespace brisk::train {
namespace {

using Strings = std::vector<std::string>;
const Strings kAllProjections = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

const char* kFullYaml = R"(# a complete run
base_model: /models/Llama-3.2-1B-Instruct
method: lora
dataset:
  path: data/train.jsonl
  format: alpaca
  eval_path: data/eval.jsonl
  eval_split: 0.05
  text_field: content
lora:
  r: 32
  alpha: 64
  dropout: 0.05
  target_modules: [v_proj, q_proj]
  rslora: true
freeze_embeddings: false
freeze_lm_head: false
learning_rate: 1e-4
num_epochs: 3
max_steps: 500
batch_size: 4
grad_accum: 8
max_seq_length: 1024
truncation: drop
packing: true
train_on_responses_only: false
warmup_steps: 10
warmup_ratio: 0.1
lr_scheduler: cosine
weight_decay: 0.01
adam_beta1: 0.85
adam_beta2: 0.98
adam_epsilon: 1e-6
max_grad_norm: 0.5
seed: 42
output_dir: runs/llama-alpaca
save_steps: 100
eval_steps: 50
logging_steps: 5
save_total_limit: 3
chat_template_kwargs:
  enable_thinking: false
  reasoning_effort: low
)";

void expect_full_example(const TrainConfig& c) {
  EXPECT_EQ(c.base_model, "/models/Llama-3.2-1B-Instruct");
  EXPECT_EQ(c.method, "lora");
  EXPECT_EQ(c.dataset.path, "data/train.jsonl");
  EXPECT_EQ(c.dataset.format, "alpaca");
  EXPECT_EQ(c.dataset.eval_path, "data/eval.jsonl");
  EXPECT_DOUBLE_EQ(c.dataset.eval_split, 0.05);
  EXPECT_EQ(c.dataset.text_field, "content");
  EXPECT_EQ(c.lora.r, 32);
  EXPECT_DOUBLE_EQ(c.lora.alpha, 64);
  EXPECT_DOUBLE_EQ(c.lora.dropout, 0.05);
  EXPECT_EQ(c.lora.target_modules, (Strings{"q_proj", "v_proj"}));  // canonical layer order
  EXPECT_TRUE(c.lora.rslora);
  EXPECT_FALSE(c.freeze_embeddings);
  EXPECT_FALSE(c.freeze_lm_head);
  EXPECT_DOUBLE_EQ(c.learning_rate, 1e-4);
  EXPECT_DOUBLE_EQ(c.num_epochs, 3);
  EXPECT_EQ(c.max_steps, 500);
  EXPECT_EQ(c.batch_size, 4);
  EXPECT_EQ(c.grad_accum, 8);
  EXPECT_EQ(c.max_seq_length, 1024);
  EXPECT_EQ(c.truncation, "drop");
  EXPECT_TRUE(c.packing);
  EXPECT_FALSE(c.train_on_responses_only);
  EXPECT_EQ(c.warmup_steps, 10);
  EXPECT_DOUBLE_EQ(c.warmup_ratio, 0.1);
  EXPECT_EQ(c.lr_scheduler, "cosine");
  EXPECT_DOUBLE_EQ(c.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(c.adam_beta1, 0.85);
  EXPECT_DOUBLE_EQ(c.adam_beta2, 0.98);
  EXPECT_DOUBLE_EQ(c.adam_epsilon, 1e-6);
  EXPECT_DOUBLE_EQ(c.max_grad_norm, 0.5);
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.output_dir, "runs/llama-alpaca");
  EXPECT_EQ(c.save_steps, 100);
  EXPECT_EQ(c.eval_steps, 50);
  EXPECT_EQ(c.logging_steps, 5);
  EXPECT_EQ(c.save_total_limit, 3);
  EXPECT_EQ(nlohmann::json::parse(c.chat_template_kwargs_json),
            (nlohmann::json{{"enable_thinking", false}, {"reasoning_effort", "low"}}));
}

// The message of the brisk::Error that fn throws ("" and a test failure when it does not).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no brisk::Error thrown";
  return "";
}

std::string parse_error(const std::string& yaml) {
  return error_of([&] { parse_train_config(yaml, "CONFIG.yaml"); });
}

TEST(TrainConfig, ParsesFullYaml) {
  TrainConfig c = parse_train_config(kFullYaml, "CONFIG.yaml");
  expect_full_example(c);
  validate(c);
}

TEST(TrainConfig, ParsesFullJson) {
  const char* json = R"({
    "base_model": "/models/Llama-3.2-1B-Instruct", "method": "lora",
    "dataset": {"path": "data/train.jsonl", "format": "alpaca", "eval_path": "data/eval.jsonl",
                "eval_split": 0.05, "text_field": "content"},
    "lora": {"r": 32, "alpha": 64, "dropout": 0.05, "target_modules": ["v_proj", "q_proj"], "rslora": true},
    "freeze_embeddings": false, "freeze_lm_head": false, "learning_rate": 1e-4, "num_epochs": 3,
    "max_steps": 500, "batch_size": 4, "grad_accum": 8, "max_seq_length": 1024, "truncation": "drop",
    "packing": true, "train_on_responses_only": false, "warmup_steps": 10, "warmup_ratio": 0.1,
    "lr_scheduler": "cosine", "weight_decay": 0.01, "adam_beta1": 0.85, "adam_beta2": 0.98,
    "adam_epsilon": 1e-6, "max_grad_norm": 0.5, "seed": 42, "output_dir": "runs/llama-alpaca",
    "save_steps": 100, "eval_steps": 50, "logging_steps": 5, "save_total_limit": 3,
    "chat_template_kwargs": {"enable_thinking": false, "reasoning_effort": "low"}})";
  expect_full_example(parse_train_config(json, "run.json"));
}

TEST(TrainConfig, DefaultsWhenKeysAreAbsent) {
  TrainConfig c = parse_train_config("base_model: m\n", "CONFIG.yaml");
  EXPECT_EQ(c, TrainConfig{.base_model = "m"});
  EXPECT_EQ(c.lora.target_modules, kAllProjections);
  EXPECT_EQ(c.max_steps, -1);
}

TEST(TrainConfig, AcceptsAliases) {
  TrainConfig c = parse_train_config(R"(
lora: {lora_alpha: 32, lora_dropout: 0.1, use_rslora: yes}
num_train_epochs: 2.5
per_device_train_batch_size: 8
gradient_accumulation_steps: 4
max_length: 512
lr_scheduler_type: constant_with_warmup
)", "CONFIG.yaml");
  EXPECT_DOUBLE_EQ(c.lora.alpha, 32);
  EXPECT_DOUBLE_EQ(c.lora.dropout, 0.1);
  EXPECT_TRUE(c.lora.rslora);
  EXPECT_DOUBLE_EQ(c.num_epochs, 2.5);
  EXPECT_EQ(c.batch_size, 8);
  EXPECT_EQ(c.grad_accum, 4);
  EXPECT_EQ(c.max_seq_length, 512);
  EXPECT_EQ(c.lr_scheduler, "constant");  // our constant warms up, as HF's constant_with_warmup
  EXPECT_EQ(parse_train_config("micro_batch_size: 3\nsequence_len: 64\n", "c").batch_size, 3);
  EXPECT_EQ(parse_train_config("micro_batch_size: 3\nsequence_len: 64\n", "c").max_seq_length, 64);
}

TEST(TrainConfig, Shorthands) {
  TrainConfig c = parse_train_config("dataset: chats.jsonl\nlora: {target_modules: all-linear}\n", "c");
  EXPECT_EQ(c.dataset.path, "chats.jsonl");
  EXPECT_EQ(c.dataset.format, "auto");
  EXPECT_EQ(c.lora.target_modules, kAllProjections);
  c = parse_train_config("lora: {target_modules: down_proj}\n", "c");
  EXPECT_EQ(c.lora.target_modules, Strings{"down_proj"});
  c = parse_train_config("lora:\n  target_modules:\n    - up_proj\n    - gate_proj\n    - up_proj\n", "c");
  EXPECT_EQ(c.lora.target_modules, (Strings{"gate_proj", "up_proj"}));
  EXPECT_EQ(parse_train_config("max_steps: 0\n", "c").max_steps, -1);  // HF: <= 0 means "use epochs"
  EXPECT_EQ(parse_train_config("dataset: {eval_path: }\n", "c").dataset.eval_path, "");
}

TEST(TrainConfig, UnknownKeysSuggestTheClosest) {
  EXPECT_EQ(parse_error("base_model: m\nlearning_rat: 1e-4\n"),
            "CONFIG.yaml:2: unknown key 'learning_rat' (did you mean 'learning_rate'?)");
  EXPECT_EQ(parse_error("lora:\n  r: 8\n  alpah: 16\n"), "CONFIG.yaml:3: unknown key 'lora.alpah' (did you mean 'lora.alpha'?)");
  EXPECT_EQ(parse_error("dataset:\n  formt: alpaca\n"), "CONFIG.yaml:2: unknown key 'dataset.formt' (did you mean 'dataset.format'?)");
  EXPECT_EQ(parse_error("num_train_epoch: 1\n"), "CONFIG.yaml:1: unknown key 'num_train_epoch' (did you mean 'num_train_epochs'?)");
  EXPECT_EQ(parse_error("lerning_rate: 1\n"), "CONFIG.yaml:1: unknown key 'lerning_rate' (did you mean 'learning_rate'?)");
  // Nothing close: no guess.
  EXPECT_EQ(parse_error("model_name_or_path: x\n"), "CONFIG.yaml:1: unknown key 'model_name_or_path'");
  EXPECT_EQ(parse_error("lora: {quantize: 4}\n"), "CONFIG.yaml:1: unknown key 'lora.quantize'");
}

TEST(TrainConfig, WrongTypesNameKeyValueAndLine) {
  EXPECT_EQ(parse_error("base_model: m\n\nlearning_rate: fast\n"),
            "CONFIG.yaml:3: key 'learning_rate' must be a number, got 'fast'");
  EXPECT_EQ(parse_error("lora:\n  r: 8.5\n"), "CONFIG.yaml:2: key 'lora.r' must be an integer, got '8.5'");
  EXPECT_EQ(parse_error("packing: maybe\n"), "CONFIG.yaml:1: key 'packing' must be true or false, got 'maybe'");
  EXPECT_EQ(parse_error("base_model: [a, b]\n"), "CONFIG.yaml:1: key 'base_model' must be a string, got a list");
  EXPECT_EQ(parse_error("batch_size: {a: 1}\n"), "CONFIG.yaml:1: key 'batch_size' must be an integer, got a mapping");
  EXPECT_EQ(parse_error("base_model: m\nlearning_rate:\n"), "CONFIG.yaml:2: key 'learning_rate' must be a number, got nothing");
  EXPECT_EQ(parse_error("lora: 8\n"), "CONFIG.yaml:1: key 'lora' must be a mapping, got '8'");
  EXPECT_EQ(parse_error("dataset: [a]\n"), "CONFIG.yaml:1: key 'dataset' must be a mapping or a path, got a list");
  EXPECT_EQ(parse_error("chat_template_kwargs: on\n"),
            "CONFIG.yaml:1: key 'chat_template_kwargs' must be a mapping of template variables, got 'on'");
  EXPECT_EQ(parse_error("lora: {target_modules: {q: 1}}\n"),
            "CONFIG.yaml:1: key 'lora.target_modules' must be a list of module names or \"all-linear\", got a mapping");
}

TEST(TrainConfig, RangeChecks) {
  EXPECT_EQ(parse_error("learning_rate: 0\n"), "CONFIG.yaml:1: key 'learning_rate' must be > 0, got 0");
  EXPECT_EQ(parse_error("learning_rate: -1e-4\n"), "CONFIG.yaml:1: key 'learning_rate' must be > 0, got -1e-4");
  EXPECT_EQ(parse_error("lora: {r: 0}\n"), "CONFIG.yaml:1: key 'lora.r' must be in [1, 65536], got 0");
  EXPECT_EQ(parse_error("lora: {dropout: 1}\n"), "CONFIG.yaml:1: key 'lora.dropout' must be in [0, 1), got 1");
  EXPECT_EQ(parse_error("lora: {lora_dropout: -0.1}\n"), "CONFIG.yaml:1: key 'lora.lora_dropout' must be in [0, 1), got -0.1");
  EXPECT_EQ(parse_error("batch_size: 0\n"), "CONFIG.yaml:1: key 'batch_size' must be >= 1, got 0");
  EXPECT_EQ(parse_error("gradient_accumulation_steps: 0\n"),
            "CONFIG.yaml:1: key 'gradient_accumulation_steps' must be >= 1, got 0");
  EXPECT_EQ(parse_error("max_seq_length: 4\n"), "CONFIG.yaml:1: key 'max_seq_length' must be >= 8, got 4");
  EXPECT_EQ(parse_error("warmup_ratio: 1.5\n"), "CONFIG.yaml:1: key 'warmup_ratio' must be in [0, 1], got 1.5");
  EXPECT_EQ(parse_error("dataset: {eval_split: 1.0}\n"), "CONFIG.yaml:1: key 'dataset.eval_split' must be in [0, 1), got 1.0");
  EXPECT_EQ(parse_error("num_epochs: -1\n"), "CONFIG.yaml:1: key 'num_epochs' must be >= 0, got -1");
  EXPECT_EQ(parse_error("adam_beta2: 1\n"), "CONFIG.yaml:1: key 'adam_beta2' must be in [0, 1), got 1");
  EXPECT_EQ(parse_error("seed: -3\n"), "CONFIG.yaml:1: key 'seed' must be >= 0, got -3");
  // Edges that are allowed.
  EXPECT_DOUBLE_EQ(parse_train_config("warmup_ratio: 1\n", "c").warmup_ratio, 1.0);
  EXPECT_DOUBLE_EQ(parse_train_config("lora: {dropout: 0}\n", "c").lora.dropout, 0.0);
  EXPECT_EQ(parse_train_config("max_seq_length: 8\n", "c").max_seq_length, 8);
}

TEST(TrainConfig, UnknownNamesListValidValues) {
  EXPECT_EQ(parse_error("method: qlora\n"), "CONFIG.yaml:1: key 'method': unknown value 'qlora' (did you mean 'lora'? valid: lora, full)");
  EXPECT_EQ(parse_error("method: peft\n"), "CONFIG.yaml:1: key 'method': unknown value 'peft' (valid: lora, full)");
  EXPECT_EQ(parse_error("lr_scheduler: cosin\n"),
            "CONFIG.yaml:1: key 'lr_scheduler': unknown value 'cosin' (did you mean 'cosine'? valid: constant, "
            "constant_with_warmup, linear, cosine)");
  EXPECT_EQ(parse_error("dataset: {format: chatml}\n"),
            "CONFIG.yaml:1: key 'dataset.format': unknown value 'chatml' (valid: auto, text, alpaca, sharegpt, messages, "
            "prompt_completion)");
  EXPECT_EQ(parse_error("truncation: left\n"), "CONFIG.yaml:1: key 'truncation': unknown value 'left' (valid: right, drop)");
  EXPECT_EQ(parse_error("lora:\n  target_modules: [q_proj, v_prj]\n"),
            "CONFIG.yaml:2: key 'lora.target_modules': unknown module 'v_prj' (did you mean 'v_proj'? valid: q_proj, "
            "k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, all-linear)");
}

TEST(TrainConfig, MalformedDocuments) {
  EXPECT_EQ(parse_error("base_model: m\nlora: {r: 8\n"), "CONFIG.yaml:3:1: invalid YAML: end of map flow not found");
  EXPECT_EQ(parse_error(""), "CONFIG.yaml: the config is empty");
  EXPECT_EQ(parse_error("- a\n- b\n"), "CONFIG.yaml:1: expected a mapping of keys at the top level, got a list");
  EXPECT_EQ(parse_error("lora:\n  alpha: 8\n  lora_alpha: 16\n"), "CONFIG.yaml:3: key 'lora.alpha' is given twice");
  EXPECT_EQ(parse_error("{\"seed\": 1, \"seed\": 2}"), "CONFIG.yaml:1: key 'seed' is given twice");
}

TEST(TrainConfig, Overrides) {
  TrainConfig c = parse_train_config(kFullYaml, "CONFIG.yaml");
  apply_override(c, "lora.r=8");
  apply_override(c, "lora.target_modules=[q_proj,v_proj,o_proj]");
  apply_override(c, "learning_rate=1e-5");
  apply_override(c, "dataset.path=other.jsonl");
  apply_override(c, "packing=false");
  apply_override(c, "lora.lora_alpha=12");
  apply_override(c, "chat_template_kwargs={enable_thinking: true}");
  apply_override(c, "dataset.eval_path=");
  EXPECT_EQ(c.lora.r, 8);
  EXPECT_EQ(c.lora.target_modules, (Strings{"q_proj", "v_proj", "o_proj"}));
  EXPECT_DOUBLE_EQ(c.learning_rate, 1e-5);
  EXPECT_EQ(c.dataset.path, "other.jsonl");
  EXPECT_FALSE(c.packing);
  EXPECT_DOUBLE_EQ(c.lora.alpha, 12);
  EXPECT_EQ(c.chat_template_kwargs_json, R"({"enable_thinking":true})");
  EXPECT_EQ(c.dataset.eval_path, "");
  apply_override(c, "dataset=again.jsonl");
  EXPECT_EQ(c.dataset.path, "again.jsonl");
  apply_override(c, "lora={r: 4, alpha: 8}");
  EXPECT_EQ(c.lora.r, 4);
  EXPECT_DOUBLE_EQ(c.lora.alpha, 8);
  EXPECT_EQ(c.dataset.format, "alpaca");  // untouched keys keep their values

  auto err = [&](const std::string& s) { return error_of([&] { apply_override(c, s); }); };
  EXPECT_EQ(err("learning_rat=1e-4"), "--set learning_rat=1e-4: unknown key 'learning_rat' (did you mean 'learning_rate'?)");
  EXPECT_EQ(err("lora.rr=8"), "--set lora.rr=8: unknown key 'lora.rr' (did you mean 'lora.r'?)");
  EXPECT_EQ(err("lora.r=eight"), "--set lora.r=eight: key 'lora.r' must be an integer, got 'eight'");
  EXPECT_EQ(err("lora.dropout=2"), "--set lora.dropout=2: key 'lora.dropout' must be in [0, 1), got 2");
  EXPECT_EQ(err("lora.r"), "--set lora.r: expected key=value (e.g. lora.r=8)");
  EXPECT_EQ(err("seed.x=1"), "--set seed.x=1: key 'seed' has no sub-keys");
  EXPECT_EQ(err("lora.target_modules=[q_proj"), "--set lora.target_modules=[q_proj: invalid value: end of sequence flow not found");
  EXPECT_EQ(c.lora.r, 4);  // failed overrides leave the field as it was
}

TEST(TrainConfig, ValidateCrossFieldRules) {
  const TrainConfig ok = parse_train_config("base_model: m\noutput_dir: out\ndataset: d.jsonl\n", "c");
  validate(ok);
  auto err = [](TrainConfig c) { return error_of([&] { validate(c); }); };
  TrainConfig c = ok;
  c.base_model = "";
  EXPECT_EQ(err(c), "config: base_model is not set (the Hugging Face model folder to fine-tune)");
  c = ok;
  c.output_dir = "";
  EXPECT_EQ(err(c), "config: output_dir is not set (where checkpoints and the adapter go)");
  c = ok;
  c.dataset.path = "";
  EXPECT_EQ(err(c), "config: dataset.path is not set (a JSONL, JSON or CSV file)");
  c = ok;
  c.num_epochs = 0;
  EXPECT_EQ(err(c), "config: num_epochs must be > 0 unless max_steps > 0, got 0");
  c.max_steps = 10;
  validate(c);
  c = ok;
  c.freeze_embeddings = true;
  EXPECT_EQ(err(c), "config: freeze_embeddings / freeze_lm_head apply to method: full only (LoRA trains adapters alone)");
  c.method = "full";
  validate(c);
  c = ok;
  c.lora.target_modules.clear();
  EXPECT_NE(err(c).find("lora.target_modules is empty"), std::string::npos);
}

TEST(TrainConfig, JsonRoundTrip) {
  TrainConfig c = parse_train_config(kFullYaml, "CONFIG.yaml");
  c.chat_template_kwargs_json = R"({"a":[1,2.5,"x",null],"b":{"c":true}})";
  nlohmann::ordered_json j = to_json(c);
  // Every key is written, in the documented order.
  Strings keys;
  for (auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (Strings{"base_model", "method", "dataset", "lora", "freeze_embeddings", "freeze_lm_head",
                           "learning_rate", "num_epochs", "max_steps", "batch_size", "grad_accum", "max_seq_length",
                           "truncation", "packing", "train_on_responses_only", "warmup_steps", "warmup_ratio",
                           "lr_scheduler", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm",
                           "seed", "device", "gpus", "recompute", "output_dir", "save_steps", "eval_steps", "logging_steps", "save_total_limit",
                           "chat_template_kwargs"}));
  EXPECT_EQ(j["dataset"].size(), 5u);
  EXPECT_EQ(j["lora"].size(), 5u);
  EXPECT_EQ(parse_train_config(j.dump(2), "checkpoint.json"), c);
  // Defaults and awkward doubles survive too.
  TrainConfig d;
  d.learning_rate = 0.1 + 0.2;
  d.dataset.eval_split = 1.0 / 3.0;
  EXPECT_EQ(parse_train_config(to_json(d).dump(), "checkpoint.json"), d);
}

TEST(TrainConfig, LoadFromFileNamesThePath) {
  testing::TempDir dir;
  const std::string path = dir.path + "/run.yaml";
  write_file_atomic(path, "base_model: m\nlearning_rate: fast\n");
  EXPECT_EQ(error_of([&] { load_train_config(path); }), path + ":2: key 'learning_rate' must be a number, got 'fast'");
  write_file_atomic(path, kFullYaml);
  expect_full_example(load_train_config(path));
  EXPECT_THROW(load_train_config(dir.path + "/missing.yaml"), Error);
}

}  // namespace
}  // namespace brisk::train

namespace brisk::train {
namespace {
TEST(TrainConfig, DeviceAndRecompute) {
  auto parse = [](const std::string& y) { return parse_train_config("base_model: m\noutput_dir: o\n" + y, "c.yaml"); };
  EXPECT_EQ(parse("").device, "auto");
  EXPECT_EQ(parse("").recompute, "none");
  EXPECT_EQ(parse("device: cuda\n").device, "cuda");
  EXPECT_EQ(parse("recompute: selective\n").recompute, "selective");
  EXPECT_EQ(parse("gradient_checkpointing: true\n").recompute, "full");
  EXPECT_EQ(parse("gradient_checkpointing: false\n").recompute, "none");
  EXPECT_EQ(parse("use_gradient_checkpointing: unsloth\n").recompute, "selective");
  try {
    parse("device: gpu\n");
    FAIL() << "device: gpu must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse("recompute: some\n"), Error);
}
}  // namespace
}  // namespace brisk::train
