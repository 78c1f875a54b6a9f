// Decoders (tokenizer.json "decoder"): turn the token strings of a sequence of ids back into
// text. Each stage maps a list of strings to a list of strings, as tokenizers' decode_chain
// does; the caller concatenates the result.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace brisk::text {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// null -> nullptr. Throws brisk::Error for unknown types or options, naming them.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j);

}  // namespace brisk::text
