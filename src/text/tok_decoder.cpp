#include "text/tok_decoder.h"

#include "core/error.h"
#include "text/tok_json.h"
#include "text/tok_regex.h"
#include "text/tok_unicode.h"

namespace brisk::text {
namespace {

using namespace json_util;

// Maps each character back to its byte (characters outside the alphabet make the whole token
// pass through as raw UTF-8), concatenates everything and decodes it lossily.
struct ByteLevel final : Decoder {
  void decode_chain(std::vector<std::string>& tokens) const override {
    const auto& alphabet = ByteLevelAlphabet::get();
    std::string bytes;
    std::string tok_bytes;
    for (const std::string& t : tokens) {
      tok_bytes.clear();
      bool ok = true;
      for (size_t i = 0; i < t.size() && ok;) {
        char32_t cp = utf8_next(t, i);
        int b = cp < alphabet.char_to_byte.size() ? alphabet.char_to_byte[cp] : -1;
        if (b < 0) ok = false;
        else tok_bytes += static_cast<char>(b);
      }
      bytes += ok ? tok_bytes : t;
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

struct Replace final : Decoder {
  Pattern pattern;
  std::string content;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = pattern.replace_all(t, content);
  }
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xNN>" -> the byte, as Rust's u8::from_str_radix(.., 16) reads the two characters.
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
  if (t[3] == '+' && lo >= 0) return lo;
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// Runs of byte tokens become their UTF-8 text, or one U+FFFD per byte when invalid.
struct ByteFallback final : Decoder {
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    size_t pending_count = 0;
    auto flush = [&] {
      if (pending_count == 0) return;
      if (utf8_invalid_at(pending) == std::string::npos) out.push_back(pending);
      else
        for (size_t k = 0; k < pending_count; ++k) out.emplace_back("\xEF\xBF\xBD");
      pending.clear();
      pending_count = 0;
    };
    for (auto& t : tokens) {
      int b = parse_byte_token(t);
      if (b >= 0) {
        pending += static_cast<char>(b);
        ++pending_count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

struct Fuse final : Decoder {
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing `content` characters from each token.
// tokenizers then keeps (byte length - cuts) characters; with multi-byte characters that keeps
// more than intended, and we reproduce it.
struct Strip final : Decoder {
  char32_t content = ' ';
  size_t start = 0, stop = 0;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::vector<char32_t> cps;
      for (size_t i = 0; i < t.size();) cps.push_back(utf8_next(t, i));
      size_t start_cut = 0, stop_cut = 0;
      while (start_cut < start && start_cut < cps.size() && cps[start_cut] == content) ++start_cut;
      while (stop_cut < stop && stop_cut < cps.size() && cps[cps.size() - 1 - stop_cut] == content) ++stop_cut;
      size_t keep = t.size() >= start_cut + stop_cut ? t.size() - start_cut - stop_cut : 0;
      std::string out;
      for (size_t k = start_cut; k < cps.size() && k - start_cut < keep; ++k) utf8_append(out, cps[k]);
      t = std::move(out);
    }
  }
};

// Replacement characters become spaces; in the first token they are dropped (the prefix space
// the pre-tokeniser added), unless the prepend scheme is "never".
struct Metaspace final : Decoder {
  char32_t replacement = 0x2581;
  bool drop_in_first = true;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t k = 0; k < t.size();) {
        size_t s = k;
        char32_t cp = utf8_next(t, k);
        if (cp != replacement) out.append(t, s, k - s);
        else if (!(i == 0 && drop_in_first)) out += ' ';
      }
      tokens[i] = std::move(out);
    }
  }
};

struct Sequence final : Decoder {
  std::vector<std::unique_ptr<Decoder>> steps;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& s : steps) s->decode_chain(tokens);
  }
};

char32_t single_char(const std::string& s, const std::string& where) {
  BRISK_CHECK(!s.empty() && utf8_invalid_at(s) == std::string::npos &&
                  utf8_seq_len(static_cast<unsigned char>(s[0])) == s.size(),
              where, " must be exactly one character");
  size_t i = 0;
  return utf8_next(s, i);
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = type_of(j, "decoder");
  if (type == "ByteLevel") return std::make_unique<ByteLevel>();
  if (type == "ByteFallback") return std::make_unique<ByteFallback>();
  if (type == "Fuse") return std::make_unique<Fuse>();
  if (type == "Replace") {
    auto d = std::make_unique<Replace>();
    d->pattern = Pattern::from_json(field(j, "pattern", "Replace decoder"), "Replace decoder pattern");
    d->content = get_string(j, "content", "Replace decoder");
    return d;
  }
  if (type == "Strip") {
    auto d = std::make_unique<Strip>();
    d->content = single_char(get_string(j, "content", "Strip decoder"), "Strip decoder.content");
    int64_t start = get_int(j, "start", "Strip decoder"), stop = get_int(j, "stop", "Strip decoder");
    BRISK_CHECK(start >= 0 && stop >= 0, "Strip decoder start/stop must be non-negative");
    d->start = size_t(start);
    d->stop = size_t(stop);
    return d;
  }
  if (type == "Metaspace") {
    auto d = std::make_unique<Metaspace>();
    d->replacement = single_char(get_string(j, "replacement", "Metaspace decoder"), "Metaspace decoder.replacement");
    if (auto it = j.find("prepend_scheme"); it != j.end() && !it->is_null()) {
      BRISK_CHECK(it->is_string(), "Metaspace decoder.prepend_scheme must be a string");
      std::string s = it->get<std::string>();
      BRISK_CHECK(s == "first" || s == "always" || s == "never", "unsupported Metaspace prepend_scheme \"", s,
                  "\" in tokenizer.json");
      d->drop_in_first = s != "never";
    } else {
      d->drop_in_first = get_bool(j, "add_prefix_space", "Metaspace decoder", true);
    }
    return d;
  }
  if (type == "Sequence") {
    const json& list = field(j, "decoders", "Sequence decoder");
    BRISK_CHECK(list.is_array(), "Sequence decoder.decoders must be an array");
    auto d = std::make_unique<Sequence>();
    for (const json& item : list) {
      auto step = make_decoder(item);
      BRISK_CHECK(step, "Sequence decoder contains a null decoder");
      d->steps.push_back(std::move(step));
    }
    return d;
  }
  throw Error(cat("unsupported decoder type \"", type, "\" in tokenizer.json"));
}

}  // namespace brisk::text
