// `brisk bench tokenize MODEL_DIR --file F [--repeat N]`: single-threaded encode throughput.
// The file is encoded line by line (as a dataset pipeline would), N times; the first pass warms
// the word cache like any long-running process.
#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "text/tokenizer.h"

namespace {
brisk::cli::Registrar reg("bench tokenize", "Tokenizer encode throughput, one thread", [](CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  auto repeat = std::make_shared<int>(3);
  app.add_option("MODEL_DIR", *dir, "Folder with tokenizer.json")->required();
  app.add_option("--file", *file, "UTF-8 text file to encode")->required();
  app.add_option("--repeat", *repeat, "Number of passes over the file")->check(CLI::PositiveNumber);
  return [dir, file, repeat]() -> int {
    auto tok = brisk::text::Tokenizer::load(*dir);
    std::string text = brisk::read_file(*file);
    std::vector<std::string_view> lines;
    for (size_t b = 0; b < text.size();) {
      size_t e = text.find('\n', b);
      e = e == std::string::npos ? text.size() : e + 1;
      lines.push_back(std::string_view(text).substr(b, e - b));
      b = e;
    }
    size_t tokens = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < *repeat; ++r)
      for (auto line : lines) tokens += brisk::with_context(*file, [&] { return tok.encode(line, false); }).size();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double bytes = double(text.size()) * *repeat;
    std::printf("{\"bytes\":%.0f,\"tokens\":%zu,\"seconds\":%.6f,\"mb_per_s\":%.3f}\n", bytes, tokens, secs,
                bytes / 1e6 / secs);
    return 0;
  };
});
}  // namespace
