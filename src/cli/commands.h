// Subcommand registry. Each src/cli/cmd_<name>.cpp registers itself with a static Registrar:
//   static brisk::cli::Registrar reg("tokenize", [](CLI::App& app) { ...; return run_fn; });
// A name with a space ("bench decode") nests the command under a shared parent ("bench").
// The setup function declares the subcommand's flags on `app` (a CLI::App created by main for
// that subcommand) and returns the function that runs it (returning the exit code).
// User errors are thrown as brisk::Error; main prints them as one line and exits 1.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace brisk::cli {

using RunFn = std::function<int()>;
using SetupFn = std::function<RunFn(CLI::App&)>;

struct Command {
  std::string name;
  std::string help;
  SetupFn setup;
};

std::vector<Command>& registry();

struct Registrar {
  Registrar(std::string name, std::string help, SetupFn setup) {
    registry().push_back({std::move(name), std::move(help), std::move(setup)});
  }
};

// Reads all of stdin (binary-safe).
std::string read_stdin();

}  // namespace brisk::cli
