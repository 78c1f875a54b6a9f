#include "text/tok_unicode.h"

#include <algorithm>
#include <vector>

#include "text/tok_unicode_tables.h"

namespace brisk::text {

char32_t utf8_next(std::string_view s, size_t& i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  char32_t cp;
  size_t n = utf8_seq_len(c);
  switch (n) {
    case 1: cp = c; break;
    case 2: cp = ((c & 0x1F) << 6) | (b(1) & 0x3F); break;
    case 3: cp = ((c & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F); break;
    default: cp = ((c & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F); break;
  }
  i += n;
  return cp;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Number of bytes of a valid sequence starting at s[i], or the length of the maximal invalid
// subpart (>= 1) negated. Follows the Unicode "maximal subpart" rule that Rust uses.
static long utf8_check_at(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c == 0xE0) need = 2, lo = 0xA0;
  else if (c >= 0xE1 && c <= 0xEC) need = 2;
  else if (c == 0xED) need = 2, hi = 0x9F;
  else if (c >= 0xEE && c <= 0xEF) need = 2;
  else if (c == 0xF0) need = 3, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) need = 3;
  else if (c == 0xF4) need = 3, hi = 0x8F;
  else return -1;
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return -static_cast<long>(k);
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (d < l || d > h) return -static_cast<long>(k);
  }
  return static_cast<long>(need + 1);
}

size_t utf8_invalid_at(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    long n = utf8_check_at(s, i);
    if (n < 0) return i;
    i += static_cast<size_t>(n);
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    long n = utf8_check_at(s, i);
    if (n > 0) {
      out.append(s.substr(i, static_cast<size_t>(n)));
      i += static_cast<size_t>(n);
    } else {
      out += "\xEF\xBF\xBD";
      i += static_cast<size_t>(-n);
    }
  }
  return out;
}

bool is_whitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

namespace {

using namespace tables;

const Decomposition* find_mapping(const Decomposition* table, size_t n, char32_t cp) {
  auto end = table + n;
  auto it = std::lower_bound(table, end, cp, [](const Decomposition& d, char32_t c) { return d.cp < c; });
  return it != end && it->cp == cp ? it : nullptr;
}

uint8_t ccc_of(char32_t cp) {
  if (cp < 0x300) return 0;
  auto end = kCcc + kCccCount;
  auto it = std::upper_bound(kCcc, end, cp, [](char32_t c, const CccRange& r) { return c < r.first; });
  if (it == kCcc) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

void decompose_into(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {  // Hangul syllable: algorithmic
    char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    if (auto d = find_mapping(kDecomp, kDecompCount, cp)) {
      out.insert(out.end(), kDecompPool + d->offset, kDecompPool + d->offset + d->length);
      return;
    }
  }
  out.push_back(cp);
}

// Full canonical decomposition followed by the canonical ordering of combining marks.
std::vector<char32_t> decompose(std::string_view s) {
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) decompose_into(utf8_next(s, i), cps);
  // Stable insertion sort of each run of non-starters by combining class.
  for (size_t i = 1; i < cps.size(); ++i) {
    uint8_t c = ccc_of(cps[i]);
    if (c == 0) continue;
    size_t j = i;
    while (j > 0 && ccc_of(cps[j - 1]) > c) {
      std::swap(cps[j], cps[j - 1]);
      --j;
    }
  }
  return cps;
}

char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  auto end = kComp + kCompCount;
  auto it = std::lower_bound(kComp, end, std::pair{a, b}, [](const Composition& c, std::pair<char32_t, char32_t> k) {
    return c.first < k.first || (c.first == k.first && c.second < k.second);
  });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

}  // namespace

std::string nfd(std::string_view s) {
  if (is_ascii(s)) return std::string(s);
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : decompose(s)) utf8_append(out, cp);
  return out;
}

std::string nfc(std::string_view s) {
  if (is_ascii(s)) return std::string(s);
  std::vector<char32_t> cps = decompose(s);
  // Canonical composition: each character combines with the last starter unless blocked by
  // an intervening character of equal or higher combining class.
  size_t starter = SIZE_MAX, out_n = 0;
  int last_ccc = -1;
  for (size_t i = 0; i < cps.size(); ++i) {
    char32_t cp = cps[i];
    uint8_t c = ccc_of(cp);
    if (starter != SIZE_MAX && (last_ccc < c || (last_ccc == 0 && out_n == starter + 1))) {
      if (char32_t comp = compose_pair(cps[starter], cp)) {
        cps[starter] = comp;
        continue;
      }
    }
    if (c == 0) {
      starter = out_n;
      last_ccc = 0;
    } else {
      last_ccc = c;
    }
    cps[out_n++] = cp;
  }
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < out_n; ++i) utf8_append(out, cps[i]);
  return out;
}

std::string to_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out += static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
      ++i;
      continue;
    }
    char32_t cp = utf8_next(s, i);
    if (auto m = find_mapping(kLower, kLowerCount, cp)) {
      for (uint32_t k = 0; k < m->length; ++k) utf8_append(out, kLowerPool[m->offset + k]);
    } else {
      utf8_append(out, cp);
    }
  }
  return out;
}

const ByteLevelAlphabet& ByteLevelAlphabet::get() {
  static const ByteLevelAlphabet alphabet = [] {
    ByteLevelAlphabet a;
    a.char_to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t cp = printable ? static_cast<char32_t>(b) : next++;
      utf8_append(a.byte_to_utf8[b], cp);
      a.char_to_byte[cp] = static_cast<int16_t>(b);
    }
    return a;
  }();
  return alphabet;
}

}  // namespace brisk::text
