#include "text/tok_added_tokens.h"

#include <algorithm>

#include "text/tok_regex.h"
#include "text/tok_unicode.h"

namespace brisk::text {

AddedTokenMatcher::AddedTokenMatcher(const std::vector<const AddedToken*>& tokens,
                                     const std::vector<std::string>& patterns) {
  nodes_.emplace_back();
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    int32_t node = 0;
    for (unsigned char b : p) {
      int32_t next = child(node, b);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        auto& ch = nodes_[size_t(node)].children;
        ch.insert(std::lower_bound(ch.begin(), ch.end(), std::pair<unsigned char, int32_t>{b, 0}), {b, next});
        nodes_.emplace_back();
      }
      node = next;
    }
    // Duplicate content: the first token keeps the pattern (Aho-Corasick reports the pattern
    // added first).
    if (nodes_[size_t(node)].token < 0) {
      tokens_.push_back(tokens[t]);
      nodes_[size_t(node)].token = static_cast<int32_t>(tokens_.size() - 1);
    }
  }
}

int32_t AddedTokenMatcher::child(int32_t node, unsigned char b) const {
  const auto& ch = nodes_[size_t(node)].children;
  auto it = std::lower_bound(ch.begin(), ch.end(), std::pair<unsigned char, int32_t>{b, 0},
                             [](auto& x, auto& y) { return x.first < y.first; });
  return it != ch.end() && it->first == b ? it->second : -1;
}

namespace {

// A "word" character for single_word tokens: the regex \w class, as tokenizers uses.
bool is_word_char(std::string_view ch) {
  static const Regex word(R"(^\w$)", "word-character class");
  return !word.find_all(ch).empty();
}

std::string_view last_char(std::string_view s) {
  size_t b = s.size() - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  return s.substr(b);
}

std::string_view first_char(std::string_view s) {
  return s.substr(0, std::min(s.size(), utf8_seq_len(static_cast<unsigned char>(s[0]))));
}

}  // namespace

void AddedTokenMatcher::split(std::string_view text, bool skip_special, std::vector<Segment>& out) const {
  size_t start_offset = 0;
  if (!tokens_.empty()) {
    for (size_t pos = 0; pos < text.size();) {
      // Longest pattern starting at pos (leftmost-longest: the first position with a match wins).
      int32_t node = 0, found = -1;
      size_t found_end = 0;
      for (size_t k = pos; k < text.size(); ++k) {
        node = child(node, static_cast<unsigned char>(text[k]));
        if (node < 0) break;
        if (nodes_[size_t(node)].token >= 0) found = nodes_[size_t(node)].token, found_end = k + 1;
      }
      if (found < 0) {
        ++pos;
        continue;
      }
      const AddedToken& tok = *tokens_[size_t(found)];
      size_t start = pos, stop = found_end;
      pos = found_end;  // matches never overlap, even when this one is then rejected
      if (skip_special && tok.special) continue;
      if (tok.single_word) {
        bool space_before = start == 0 || !is_word_char(last_char(text.substr(0, start)));
        bool space_after = stop == text.size() || !is_word_char(first_char(text.substr(stop)));
        if (!space_before || !space_after) continue;
      }
      if (tok.lstrip) {  // swallow whitespace on the left not already claimed by a previous match
        size_t s = start;
        while (s > start_offset) {
          size_t b = s - 1;
          while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
          size_t i = b;
          if (!is_whitespace(utf8_next(text, i))) break;
          s = b;
        }
        start = s;
      }
      if (tok.rstrip) {
        while (stop < text.size()) {
          size_t i = stop;
          if (!is_whitespace(utf8_next(text, i))) break;
          stop = i;
        }
        pos = std::max(pos, stop);
      }
      if (start_offset < start) out.push_back({start_offset, start, -1});
      out.push_back({start, stop, tok.id});
      start_offset = stop;
    }
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace brisk::text
