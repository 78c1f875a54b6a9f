// libFuzzer target: the input is a tokenizer.json text. Loading it, then encoding and decoding
// a fixed string, must either work or throw brisk::Error; anything else (crash, other
// exception, sanitizer report) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto tok = brisk::text::Tokenizer::from_json(text, "");
    auto ids = tok.encode("Hello, world! caf\xC3\xA9 \xE4\xB8\xAD 123 <s> \xF0\x9F\x98\x80");
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
  } catch (const brisk::Error&) {
  }
  return 0;
}
