#include "text/tok_normalizer.h"

#include <vector>

#include "core/error.h"
#include "text/tok_json.h"
#include "text/tok_regex.h"
#include "text/tok_unicode.h"

namespace brisk::text {
namespace {

using namespace json_util;

struct Nfc final : Normalizer {
  std::string normalize(std::string_view t) const override { return nfc(t); }
};
struct Nfd final : Normalizer {
  std::string normalize(std::string_view t) const override { return nfd(t); }
};
struct Lowercase final : Normalizer {
  std::string normalize(std::string_view t) const override { return to_lower(t); }
};

// Prepends a string unless the text is empty (tokenizers cannot attach it to nothing).
struct Prepend final : Normalizer {
  std::string prefix;
  std::string normalize(std::string_view t) const override {
    return t.empty() ? std::string() : prefix + std::string(t);
  }
};

struct Replace final : Normalizer {
  Pattern pattern;
  std::string content;
  std::string normalize(std::string_view t) const override { return pattern.replace_all(t, content); }
};

// Strips Unicode whitespace from the left and/or right.
struct Strip final : Normalizer {
  bool left = true, right = true;
  std::string normalize(std::string_view t) const override {
    size_t b = 0, e = t.size();
    if (left) {
      while (b < e) {
        size_t i = b;
        if (!is_whitespace(utf8_next(t, i))) break;
        b = i;
      }
    }
    if (right) {
      while (e > b) {
        size_t s = e - 1;
        while (s > b && (static_cast<unsigned char>(t[s]) & 0xC0) == 0x80) --s;
        size_t i = s;
        if (!is_whitespace(utf8_next(t, i))) break;
        e = s;
      }
    }
    return std::string(t.substr(b, e - b));
  }
};

struct Sequence final : Normalizer {
  std::vector<std::unique_ptr<Normalizer>> steps;
  std::string normalize(std::string_view t) const override {
    std::string s(t);
    for (auto& n : steps) s = n->normalize(s);
    return s;
  }
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  const std::string where = "normalizer";
  std::string type = type_of(j, where);
  if (type == "NFC") return std::make_unique<Nfc>();
  if (type == "NFD") return std::make_unique<Nfd>();
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Prepend") {
    auto n = std::make_unique<Prepend>();
    n->prefix = get_string(j, "prepend", "Prepend normalizer");
    return n;
  }
  if (type == "Replace") {
    auto n = std::make_unique<Replace>();
    n->pattern = Pattern::from_json(field(j, "pattern", "Replace normalizer"), "Replace normalizer pattern");
    n->content = get_string(j, "content", "Replace normalizer");
    return n;
  }
  if (type == "Strip") {
    auto n = std::make_unique<Strip>();
    n->left = get_bool(j, "strip_left", "Strip normalizer", true);
    n->right = get_bool(j, "strip_right", "Strip normalizer", true);
    return n;
  }
  if (type == "Sequence") {
    const json& list = field(j, "normalizers", "Sequence normalizer");
    BRISK_CHECK(list.is_array(), "Sequence normalizer.normalizers must be an array");
    auto n = std::make_unique<Sequence>();
    for (const json& item : list) {
      auto step = make_normalizer(item);
      BRISK_CHECK(step, "Sequence normalizer contains a null normalizer");
      n->steps.push_back(std::move(step));
    }
    return n;
  }
  throw Error(cat("unsupported normalizer type \"", type, "\" in tokenizer.json"));
}

}  // namespace brisk::text
