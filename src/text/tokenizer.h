// brisk's tokenizer: reads a Hugging Face tokenizer folder (tokenizer.json, optional
// tokenizer_config.json) and encodes/decodes exactly as transformers' AutoTokenizer does.
//
// Pipeline (as in the `tokenizers` library): added tokens are split out of the raw text; each
// remaining piece is normalised, split again on normalised added tokens, pre-tokenised and
// encoded by the BPE model; the post-processor adds BOS/EOS. Decoding maps ids to token
// strings and runs the decoder chain, then transformers' clean_up_tokenization_spaces.
//
// A Tokenizer is a cheap handle on immutable shared state: copy it freely; concurrent encode
// and decode calls are safe.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace brisk::text {

class Tokenizer {
 public:
  // Needs DIR/tokenizer.json; DIR/tokenizer_config.json is optional. Throws brisk::Error.
  static Tokenizer load(const std::string& dir);
  // Same from in-memory JSON texts (config may be empty). `origin` names them in errors.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json,
                             const std::string& origin = "tokenizer.json");

  // `text` must be valid UTF-8 (else brisk::Error with the byte offset).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Ids outside [0, vocab_size()) -> brisk::Error.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  int32_t vocab_size() const;  // max id + 1 over model vocab and added tokens
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // "" for ids without a token
  bool is_special(int32_t id) const;
  const std::string& bos_token() const;  // from tokenizer_config.json ("" if none)
  const std::string& eos_token() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;

  struct State;

 private:
  explicit Tokenizer(std::shared_ptr<const State> s) : s_(std::move(s)) {}
  std::shared_ptr<const State> s_;
};

// Incremental detokenisation for streaming generation: push ids one at a time and get back
// only text that is final (never half a UTF-8 character, never text a later token could
// change); flush() returns whatever remains at the end.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  std::string push(int32_t id);
  std::string flush();

 private:
  Tokenizer tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  size_t prefix_ = 0, read_ = 0;  // ids_[prefix_, read_) were already emitted: decoding context
};

}  // namespace brisk::text
