// UTF-8 and Unicode helpers shared by the tokenizer stages: decoding/encoding, validation,
// Rust-compatible lossy decoding, whitespace, lowercase, NFC/NFD, and GPT-2's byte<->char map.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace brisk::text {

// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for stray bytes).
inline size_t utf8_seq_len(unsigned char lead) {
  return lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
}

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i past it.
char32_t utf8_next(std::string_view s, size_t& i);
void utf8_append(std::string& out, char32_t cp);
// Byte offset of the first invalid sequence, or npos when s is valid UTF-8.
size_t utf8_invalid_at(std::string_view s);
// Decodes bytes as Rust's String::from_utf8_lossy does: each maximal invalid subpart becomes
// one U+FFFD. Hugging Face decoders use it, so decoded text matches theirs byte for byte.
std::string utf8_lossy(std::string_view bytes);

bool is_whitespace(char32_t c);  // Unicode White_Space (Rust char::is_whitespace)

std::string to_lower(std::string_view s);  // per-character full lowercase mapping
std::string nfd(std::string_view s);
std::string nfc(std::string_view s);

// GPT-2 byte-level alphabet: printable bytes map to themselves, the other 68 to U+0100 + n.
struct ByteLevelAlphabet {
  std::array<std::string, 256> byte_to_utf8;  // byte -> its char, UTF-8 encoded
  std::array<int16_t, 0x144> char_to_byte;    // code point (< 0x144) -> byte, -1 if none
  static const ByteLevelAlphabet& get();
};

}  // namespace brisk::text
