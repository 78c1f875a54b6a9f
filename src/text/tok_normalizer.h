// Normalisers (tokenizer.json "normalizer"): string -> string transforms applied to each piece
// of text between added tokens, before pre-tokenisation.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace brisk::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string_view text) const = 0;
};

// Builds the normaliser described by `j` (null -> nullptr). Throws brisk::Error for unknown
// types or options, naming them.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j);

}  // namespace brisk::text
