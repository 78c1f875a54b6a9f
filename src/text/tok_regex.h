// Patterns for the tokenizer stages. Regex: a compiled PCRE2 pattern (UTF + Unicode properties, JIT when available) used by the Split
// pre-tokenizer, Replace normaliser/decoder and ByteLevel's GPT-2 split. Immutable after
// construction and safe to share between threads: match data is per call.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace brisk::text {

class Regex {
 public:
  // Throws brisk::Error naming `what` (e.g. "Split pre_tokenizer pattern") if it does not compile.
  Regex(const std::string& pattern, const std::string& what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches [begin, end) in byte offsets, left to right. Empty matches are
  // skipped, as the Rust regex crate's split APIs effectively do for tokenizers.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The `pattern` of Split, Replace (normaliser and decoder): {"String": literal} or {"Regex": re}.
class Pattern {
 public:
  static Pattern from_json(const nlohmann::json& j, const std::string& where);
  // Non-overlapping matches, left to right, in byte offsets.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;  // null for a literal
};

}  // namespace brisk::text
