// brisk: one executable, many subcommands (see src/cli/cmd_*.cpp).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>

#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"

namespace brisk::cli {

std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

}  // namespace brisk::cli

int main(int argc, char** argv) {
  using namespace brisk;
  CLI::App app{"brisk: fine-tune and run open LLMs natively (version " BRISK_VERSION ")", "brisk"};
  app.require_subcommand(1);
  app.set_version_flag("--version", BRISK_VERSION);
  bool log_json = false, verbose = false;
  app.add_flag("--log-json", log_json, "Log as JSON lines");
  app.add_flag("-v,--verbose", verbose, "Debug logging");

  // "bench decode" registers `decode` under a shared `bench` parent.
  std::map<CLI::App*, cli::RunFn> runs;
  std::map<std::string, CLI::App*> parents;
  for (auto& cmd : cli::registry()) {
    CLI::App* parent = &app;
    std::string name = cmd.name;
    if (auto sp = name.find(' '); sp != std::string::npos) {
      std::string group = name.substr(0, sp);
      name = name.substr(sp + 1);
      CLI::App*& p = parents[group];
      if (!p) {
        p = app.add_subcommand(group, group == "bench" ? "Benchmarks (one JSON line of results)" : group);
        p->require_subcommand(1);
      }
      parent = p;
    }
    CLI::App* sub = parent->add_subcommand(name, cmd.help);
    runs[sub] = cmd.setup(*sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  set_log_json(log_json);
  if (verbose) set_log_level(LogLevel::Debug);
  try {
    for (auto& [sub, run] : runs)
      if (sub->parsed()) return run();
  } catch (const brisk::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "brisk: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "brisk: error: out of memory\n");
    return 1;
  }
  return 0;
}
