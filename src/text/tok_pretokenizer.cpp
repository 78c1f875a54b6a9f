#include "text/tok_pretokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "text/tok_json.h"
#include "text/tok_regex.h"
#include "text/tok_unicode.h"

namespace brisk::text {
namespace {

using namespace json_util;

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const std::string& s) {
  if (s == "Removed") return Behavior::Removed;
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  throw Error(cat("unsupported Split behavior \"", s, "\" in tokenizer.json"));
}

struct Span {
  size_t b, e;
  bool is_match;
};

// Splits `text` at `matches` following tokenizers' SplitDelimiterBehavior rules and appends the
// non-empty parts to `out`.
void split_by(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches, bool invert,
              Behavior behavior, std::vector<Piece>& out) {
  const std::string& text = piece.text;
  std::vector<Span> spans;  // the whole text as alternating non-match / match spans
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (prev != b) spans.push_back({prev, b, invert});
    spans.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), invert});

  std::vector<Span> parts;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::Removed:
      for (auto& s : spans)
        if (!s.is_match) parts.push_back(s);
      break;
    case Behavior::Isolated:
      parts.swap(spans);  // spans is not used again
      break;
    case Behavior::MergedWithPrevious:
      for (auto& s : spans) {
        if (s.is_match && !previous_match && !parts.empty()) parts.back().e = s.e;
        else parts.push_back(s);
        previous_match = s.is_match;
      }
      break;
    case Behavior::MergedWithNext:
      for (size_t k = spans.size(); k-- > 0;) {
        const Span& s = spans[k];
        if (s.is_match && !previous_match && !parts.empty()) parts.back().b = s.b;
        else parts.push_back(s);
        previous_match = s.is_match;
      }
      std::reverse(parts.begin(), parts.end());
      break;
    case Behavior::Contiguous:
      for (auto& s : spans) {
        if (s.is_match == previous_match && !parts.empty()) parts.back().e = s.e;
        else parts.push_back(s);
        previous_match = s.is_match;
      }
      break;
  }
  for (auto& p : parts)
    if (p.e > p.b) out.push_back({text.substr(p.b, p.e - p.b), piece.at_origin && p.b == 0});
}

struct Split final : PreTokenizer {
  Pattern pattern;
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    for (const Piece& p : pieces) split_by(p, pattern.find_all(p.text), invert, behavior, out);
    pieces = std::move(out);
  }
};

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Optionally adds a leading space and splits with the GPT-2 regex, then maps every byte to its
// printable stand-in so the BPE vocabulary (all printable strings) can cover any input.
struct ByteLevel final : PreTokenizer {
  bool add_prefix_space = true;
  std::shared_ptr<const Regex> gpt2;  // null when use_regex is false
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> split;
    split.reserve(pieces.size());
    for (Piece& p : pieces) {
      if (add_prefix_space && !p.text.empty() && p.text[0] != ' ') p.text.insert(p.text.begin(), ' ');
      if (gpt2) split_by(p, gpt2->find_all(p.text), false, Behavior::Isolated, split);
      else if (!p.text.empty()) split.push_back(std::move(p));
    }
    const auto& alphabet = ByteLevelAlphabet::get();
    for (Piece& p : split) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (unsigned char c : p.text) mapped += alphabet.byte_to_utf8[c];
      p.text = std::move(mapped);
    }
    pieces = std::move(split);
  }
};

enum class PrependScheme { First, Always, Never };

// SentencePiece-style: spaces become the replacement character (U+2581 "▁"), one is prepended
// per the scheme, and the text is optionally split before each replacement character.
struct Metaspace final : PreTokenizer {
  std::string replacement;
  PrependScheme scheme = PrependScheme::Always;
  bool split = true;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces) {
      Piece q{{}, p.at_origin};
      q.text.reserve(p.text.size() + 8);
      for (char c : p.text) {
        if (c == ' ') q.text += replacement;
        else q.text += c;
      }
      bool starts = q.text.compare(0, replacement.size(), replacement) == 0;
      bool prepend = scheme == PrependScheme::Always || (scheme == PrependScheme::First && p.at_origin);
      if (prepend && !starts && !q.text.empty()) q.text.insert(0, replacement);
      if (!split) {
        if (!q.text.empty()) out.push_back(std::move(q));
        continue;
      }
      std::vector<std::pair<size_t, size_t>> matches;
      for (size_t at = q.text.find(replacement); at != std::string::npos; at = q.text.find(replacement, at + replacement.size()))
        matches.emplace_back(at, at + replacement.size());
      split_by(q, matches, false, Behavior::MergedWithNext, out);
    }
    pieces = std::move(out);
  }
};

struct Sequence final : PreTokenizer {
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (auto& s : steps) s->pre_tokenize(pieces);
  }
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  const std::string where = "pre_tokenizer";
  std::string type = type_of(j, where);
  if (type == "Split") {
    auto p = std::make_unique<Split>();
    p->pattern = Pattern::from_json(field(j, "pattern", "Split pre_tokenizer"), "Split pre_tokenizer pattern");
    p->behavior = parse_behavior(get_string(j, "behavior", "Split pre_tokenizer"));
    p->invert = get_bool(j, "invert", "Split pre_tokenizer", false);
    return p;
  }
  if (type == "ByteLevel") {
    auto p = std::make_unique<ByteLevel>();
    p->add_prefix_space = get_bool(j, "add_prefix_space", "ByteLevel pre_tokenizer", true);
    if (get_bool(j, "use_regex", "ByteLevel pre_tokenizer", true))
      p->gpt2 = std::make_shared<const Regex>(kGpt2Pattern, "ByteLevel GPT-2 pattern");
    return p;
  }
  if (type == "Metaspace") {
    auto p = std::make_unique<Metaspace>();
    p->replacement = get_string(j, "replacement", "Metaspace pre_tokenizer");
    BRISK_CHECK(!p->replacement.empty() && utf8_invalid_at(p->replacement) == std::string::npos &&
                    utf8_seq_len(static_cast<unsigned char>(p->replacement[0])) == p->replacement.size(),
                "Metaspace pre_tokenizer.replacement must be exactly one character");
    p->split = get_bool(j, "split", "Metaspace pre_tokenizer", true);
    if (auto it = j.find("prepend_scheme"); it != j.end() && !it->is_null()) {
      BRISK_CHECK(it->is_string(), "Metaspace pre_tokenizer.prepend_scheme must be a string");
      std::string s = it->get<std::string>();
      if (s == "first") p->scheme = PrependScheme::First;
      else if (s == "always") p->scheme = PrependScheme::Always;
      else if (s == "never") p->scheme = PrependScheme::Never;
      else throw Error(cat("unsupported Metaspace prepend_scheme \"", s, "\" in tokenizer.json"));
    } else {  // older files: add_prefix_space
      p->scheme = get_bool(j, "add_prefix_space", "Metaspace pre_tokenizer", true) ? PrependScheme::Always
                                                                                    : PrependScheme::Never;
    }
    return p;
  }
  if (type == "Sequence") {
    const json& list = field(j, "pretokenizers", "Sequence pre_tokenizer");
    BRISK_CHECK(list.is_array(), "Sequence pre_tokenizer.pretokenizers must be an array");
    auto p = std::make_unique<Sequence>();
    for (const json& item : list) {
      auto step = make_pre_tokenizer(item);
      BRISK_CHECK(step, "Sequence pre_tokenizer contains a null pre_tokenizer");
      p->steps.push_back(std::move(step));
    }
    return p;
  }
  throw Error(cat("unsupported pre_tokenizer type \"", type, "\" in tokenizer.json"));
}

}  // namespace brisk::text
