// JSON parsing at the io edge: one-line brisk::Errors naming the file, optional rejection of
// duplicate keys (nlohmann::json silently keeps the last one) and a nesting limit.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace brisk::io {

// Index of the first byte that breaks UTF-8 (overlong forms, surrogates and code points past
// U+10FFFF included), or npos when `s` is valid.
size_t utf8_invalid_at(std::string_view s);

// Parses `text`; `what` names the source in errors ("config.json", "x.safetensors (header)").
// Rejects nesting deeper than 128 levels. With reject_duplicate_keys, an object holding the
// same key twice is an error naming the key.
nlohmann::json parse_json_checked(std::string_view text, const std::string& what, bool reject_duplicate_keys);

// Strict flavour for machine-written files where a duplicate is corruption (safetensors).
inline nlohmann::json parse_json_strict(std::string_view text, const std::string& what) {
  return parse_json_checked(text, what, true);
}

}  // namespace brisk::io
