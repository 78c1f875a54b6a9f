// `brisk bench tokenize MODEL_DIR --file F [--repeat N] [--lines]`: single-threaded encode
// throughput. By default each pass encodes the whole file in one call (what the HF comparison in
// scripts/gpu does); --lines encodes it line by line, as a dataset pipeline would. Reports the
// first (cold word cache) and the best pass.
#include <algorithm>
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
  auto by_lines = std::make_shared<bool>(false);
  app.add_flag("--lines", *by_lines, "Encode line by line instead of the whole file at once");
  app.add_option("MODEL_DIR", *dir, "Folder with tokenizer.json")->required();
  app.add_option("--file", *file, "UTF-8 text file to encode")->required();
  app.add_option("--repeat", *repeat, "Number of passes over the file")->check(CLI::PositiveNumber);
  return [dir, file, repeat, by_lines]() -> int {
    auto tok = brisk::text::Tokenizer::load(*dir);
    std::string text = brisk::read_file(*file);
    std::vector<std::string_view> lines;
    for (size_t b = 0; b < text.size();) {
      size_t e = text.find('\n', b);
      e = e == std::string::npos ? text.size() : e + 1;
      lines.push_back(std::string_view(text).substr(b, e - b));
      b = e;
    }
    if (!*by_lines) lines = {std::string_view(text)};
    size_t tokens = 0;
    double first = 0, best = 0;
    for (int r = 0; r < *repeat; ++r) {
      tokens = 0;
      auto t0 = std::chrono::steady_clock::now();
      for (auto line : lines) tokens += brisk::with_context(*file, [&] { return tok.encode(line, false); }).size();
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r == 0) first = secs;
      best = r == 0 ? secs : std::min(best, secs);
    }
    double bytes = double(text.size());
    std::printf("{\"impl\":\"brisk\",\"mode\":\"%s\",\"bytes\":%.0f,\"tokens\":%zu,\"first_seconds\":%.6f,"
                "\"seconds\":%.6f,\"mb_per_s\":%.3f}\n",
                *by_lines ? "lines" : "whole", bytes, tokens, first, best, bytes / 1e6 / best);
    return 0;
  };
});
}  // namespace
