// Helpers shared by the golden tests: reference files and `brisk init-model` arguments.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_util.h"
#include "model/init_model.h"
#include "model/train_model.h"

namespace brisk::testing {

// A committed reference file; a missing one is an error that says how to make it.
inline nlohmann::json load_golden_json(const std::string& rel, const char* script) {
  std::string path = source_path(rel);
  if (!file_exists(path)) throw Error(cat(path, " is missing: generate it on the GPU machine with tests/golden/", script));
  return nlohmann::json::parse(read_file(path));
}

// The `init` arguments of a case file, as InitModelOptions (the scripts pass the same
// arguments to `brisk init-model`).
inline InitModelOptions parse_init_args(const nlohmann::json& args, const std::string& tok_dir) {
  InitModelOptions o;
  o.tokenizer_dir = tok_dir;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    std::string k = args[i], v = args[i + 1];
    if (k == "--arch") o.arch = v;
    else if (k == "--preset") o.preset = v;
    else if (k == "--seed") o.seed = std::stoull(v);
    else if (k == "--tie") o.tie = v == "yes";
    else if (k == "--rope-scaling") o.rope_scaling = v;
    else if (k == "--sliding-window") o.sliding_window = std::stoll(v);
    else if (k == "--dtype") o.dtype = v;
    else throw Error("unknown init-model argument " + k);
  }
  return o;
}

// The packed training batch of a golden case: rows of {"ids": [...], "labels": [...]}.
inline TokenBatch golden_batch(const nlohmann::json& rows) {
  TokenBatch b;
  b.cu_seqlens.push_back(0);
  for (const nlohmann::json& r : rows) {
    auto ids = r["ids"].get<std::vector<int32_t>>();
    auto labels = r["labels"].get<std::vector<int32_t>>();
    for (size_t i = 0; i < ids.size(); ++i) {
      b.ids.push_back(ids[i]);
      b.labels.push_back(labels[i]);
      b.positions.push_back(int32_t(i));
    }
    b.cu_seqlens.push_back(int32_t(b.ids.size()));
  }
  return b;
}

}  // namespace brisk::testing
