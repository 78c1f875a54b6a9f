// Pre-tokenisers (tokenizer.json "pre_tokenizer"): split normalised text into the pieces the
// model encodes one by one. Pieces never span an added token.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace brisk::text {

struct Piece {
  std::string text;
  bool at_origin = false;  // starts at byte 0 of the original input (Metaspace "first")
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` with their split (and possibly transformed) parts; drops empty pieces.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

// null -> nullptr. Throws brisk::Error for unknown types or options, naming them.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j);

}  // namespace brisk::text
