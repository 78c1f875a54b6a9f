#include "common/test_util.h"

#include <cstdio>
#include <filesystem>
#include <sys/wait.h>

namespace brisk::testing {

int run_command(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    if (out) out->append(buf, n);
  int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/brisk-test-XXXXXX";
  char* p = ::mkdtemp(tmpl);
  if (!p) throw Error("mkdtemp failed");
  path = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace brisk::testing
