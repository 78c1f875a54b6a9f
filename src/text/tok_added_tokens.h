// Added tokens (tokenizer.json "added_tokens"): strings matched as whole tokens before the
// model sees the text. As in tokenizers, tokens with normalized=false are matched on the raw
// input, the others on each normalised piece; matching is leftmost-longest, then single_word,
// lstrip and rstrip are applied.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace brisk::text {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// A byte range of the text, either matched as added token `id` or plain text (id = -1).
struct Segment {
  size_t begin, end;
  int32_t id;
};

class AddedTokenMatcher {
 public:
  // `patterns[i]` is the string to find for `tokens[i]` (its content, normalised or not).
  AddedTokenMatcher(const std::vector<const AddedToken*>& tokens, const std::vector<std::string>& patterns);
  bool empty() const { return tokens_.empty(); }
  // Splits text into consecutive segments covering it (an empty text gives no segment).
  // Special tokens are skipped when `skip_special` (split_special_tokens).
  void split(std::string_view text, bool skip_special, std::vector<Segment>& out) const;

 private:
  struct Node {
    int32_t token = -1;  // index into tokens_ when a pattern ends here
    std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
  };
  int32_t child(int32_t node, unsigned char b) const;
  std::vector<Node> nodes_;
  std::vector<const AddedToken*> tokens_;
};

}  // namespace brisk::text
