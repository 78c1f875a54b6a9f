// Python str semantics on UTF-8. Case mapping is ASCII-only: chat templates apply it to role
// names and keywords; full Unicode case tables are not worth their size here.
#include "text/jinja/strings.h"

#include <cctype>

#include "core/error.h"
#include "text/jinja/value.h"

namespace brisk::text::jinja {
namespace {
uint32_t decode(const std::string& ch) {
  unsigned char c = static_cast<unsigned char>(ch[0]);
  if (ch.size() == 1) return c;
  uint32_t cp = c & (0xFF >> (ch.size() + 1));
  for (size_t i = 1; i < ch.size(); ++i) cp = (cp << 6) | (static_cast<unsigned char>(ch[i]) & 0x3F);
  return cp;
}
bool is_alpha_ascii(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
}  // namespace

bool py_isspace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right) {
  std::vector<std::string> cs = utf8_chars(s);
  std::vector<std::string> set = chars ? utf8_chars(*chars) : std::vector<std::string>{};
  auto strippable = [&](const std::string& ch) {
    if (!chars) return py_isspace(decode(ch));
    for (auto& x : set)
      if (x == ch) return true;
    return false;
  };
  size_t b = 0, e = cs.size();
  if (left) while (b < e && strippable(cs[b])) ++b;
  if (right) while (e > b && strippable(cs[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cs[i];
  return out;
}

std::vector<std::string> py_split(const std::string& s, const std::string* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    if (sep->empty()) throw Error("empty separator");
    size_t pos = 0;
    while (maxsplit < 0 || int64_t(out.size()) < maxsplit) {
      size_t f = s.find(*sep, pos);
      if (f == std::string::npos) break;
      out.push_back(s.substr(pos, f - pos));
      pos = f + sep->size();
    }
    out.push_back(s.substr(pos));
    return out;
  }
  std::vector<std::string> cs = utf8_chars(s);
  size_t i = 0;
  while (i < cs.size()) {
    while (i < cs.size() && py_isspace(decode(cs[i]))) ++i;
    if (i == cs.size()) break;
    if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) {
      std::string rest;
      for (size_t k = i; k < cs.size(); ++k) rest += cs[k];
      out.push_back(py_strip(rest, nullptr, false, true));
      return out;
    }
    std::string word;
    while (i < cs.size() && !py_isspace(decode(cs[i]))) word += cs[i++];
    out.push_back(word);
  }
  return out;
}

std::vector<std::string> py_rsplit(const std::string& s, const std::string* sep, int64_t maxsplit) {
  if (maxsplit < 0) return py_split(s, sep, -1);
  std::vector<std::string> out;
  if (sep) {
    if (sep->empty()) throw Error("empty separator");
    size_t end = s.size();
    while (int64_t(out.size()) < maxsplit) {
      if (end < sep->size()) break;
      size_t f = s.rfind(*sep, end - sep->size());
      if (f == std::string::npos) break;
      out.insert(out.begin(), s.substr(f + sep->size(), end - f - sep->size()));
      end = f;
    }
    out.insert(out.begin(), s.substr(0, end));
    return out;
  }
  std::vector<std::string> words = py_split(s, nullptr, -1);
  if (int64_t(words.size()) <= maxsplit + 1) return words;
  // Whitespace rsplit keeps the head verbatim (minus trailing space): rebuild from the right.
  std::string head = py_strip(s, nullptr, false, true);
  for (int64_t k = 0; k < maxsplit; ++k) {
    const std::string& w = words[words.size() - 1 - size_t(k)];
    head = py_strip(head.substr(0, head.size() - w.size()), nullptr, false, true);
  }
  out.push_back(head);
  out.insert(out.end(), words.end() - maxsplit, words.end());
  return out;
}

std::string py_upper(const std::string& s) {
  std::string o = s;
  for (size_t i = 0; i < s.size(); ++i)
    if (static_cast<unsigned char>(s[i]) < 0x80) o[i] = char(std::toupper(static_cast<unsigned char>(s[i])));
  return o;
}
std::string py_lower(const std::string& s) {
  std::string o = s;
  for (size_t i = 0; i < s.size(); ++i)
    if (static_cast<unsigned char>(s[i]) < 0x80) o[i] = char(std::tolower(static_cast<unsigned char>(s[i])));
  return o;
}
std::string py_capitalize(const std::string& s) {
  std::string o = py_lower(s);
  if (!o.empty() && static_cast<unsigned char>(o[0]) < 0x80) o[0] = char(std::toupper(static_cast<unsigned char>(o[0])));
  return o;
}
std::string py_title(const std::string& s) {
  std::string o = s;
  bool prev_cased = false;
  for (char& c : o) {
    if (is_alpha_ascii(c)) {
      c = char(prev_cased ? std::tolower(static_cast<unsigned char>(c)) : std::toupper(static_cast<unsigned char>(c)));
      prev_cased = true;
    } else {
      prev_cased = false;
    }
  }
  return o;
}
std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count) {
  std::string out;
  if (old.empty()) {  // Python inserts repl between every character
    std::vector<std::string> cs = utf8_chars(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cs.size(); ++i) {
      if (count < 0 || done < count) { out += repl; ++done; }
      if (out.size() > kMaxStringBytes) throw Error(cat("string longer than ", kMaxStringBytes, " bytes"));
      if (i < cs.size()) out += cs[i];
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t f = s.find(old, pos);
    if (f == std::string::npos) break;
    out += s.substr(pos, f - pos) + repl;
    if (out.size() > kMaxStringBytes) throw Error(cat("string longer than ", kMaxStringBytes, " bytes"));
    pos = f + old.size();
    ++done;
  }
  return out + s.substr(pos);
}

}  // namespace brisk::text::jinja
