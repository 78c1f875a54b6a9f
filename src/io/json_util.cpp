#include "io/json_util.h"

#include <string>
#include <unordered_set>
#include <vector>

#include "core/error.h"

namespace brisk::io {

using json = nlohmann::json;

size_t utf8_invalid_at(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return i;  // continuation byte first, or C0/C1/F5..FF
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

nlohmann::json parse_json_checked(std::string_view text, const std::string& what, bool reject_duplicate_keys) {
  constexpr int kMaxDepth = 128;
  std::vector<std::unordered_set<std::string>> open_objects;  // keys seen, per open object
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= kMaxDepth) throw Error(cat(what, ": JSON nested deeper than ", kMaxDepth, " levels"));
        if (event == json::parse_event_t::object_start && reject_duplicate_keys) open_objects.emplace_back();
        break;
      case json::parse_event_t::key:
        if (reject_duplicate_keys && !open_objects.back().insert(parsed.get<std::string>()).second)
          throw Error(cat(what, ": duplicate key \"", parsed.get<std::string>(), "\""));
        break;
      case json::parse_event_t::object_end:
        if (reject_duplicate_keys) open_objects.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    throw Error(cat(what, ": invalid JSON: ", e.what()));
  }
}

}  // namespace brisk::io
