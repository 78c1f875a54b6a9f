// The BPE model (tokenizer.json "model" with type BPE): vocabulary, ranked merges, byte
// fallback, unknown-token handling and a word cache. Merging follows tokenizers' algorithm
// (a priority queue of candidate pairs over a linked list of symbols; lowest rank first, ties
// to the leftmost), so ids match Hugging Face exactly.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace brisk::text {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  static std::unique_ptr<BpeModel> from_json(const nlohmann::json& model);
  ~BpeModel();

  // Appends the ids of one pre-tokenised piece to `out`.
  void encode(std::string_view piece, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;  // null for ids without a token
  int32_t size() const { return static_cast<int32_t>(id_to_token_.size()); }  // max id + 1

 private:
  BpeModel();
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  TokenMap vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  struct MergeTable;
  std::unique_ptr<MergeTable> merges_;
  struct Cache;
  std::unique_ptr<Cache> cache_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  int32_t byte_ids_[256];  // id of "<0xNN>" or -1
};

}  // namespace brisk::text
