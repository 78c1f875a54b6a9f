// Template text -> tokens. Mirrors jinja2.lexer: text between tags is data; inside {{ }} and
// {% %} come expression tokens; comments vanish. Whitespace control, exactly as Jinja2 with
// trim_blocks=True, lstrip_blocks=True:
//  - `{%-` / `{{-` / `{#-` strip all whitespace before the tag; `-%}` / `-}}` / `-#}` all after.
//  - trim_blocks: a single "\n" right after `%}` or `#}` is removed (not after `}}`; `+%}` keeps it).
//  - lstrip_blocks: spaces/tabs between the start of a line and `{%` or `{#` are removed (`{%+` keeps them).
#include "text/jinja/lexer.h"

#include <cctype>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace brisk::text::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Jinja2 normalises every newline sequence to "\n" and drops one trailing newline.
std::string normalize_newlines(const std::string& src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out += '\n';
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out += src[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) out += char(cp);
  else if (cp < 0x800) { out += char(0xC0 | (cp >> 6)); out += char(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18)); out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string src) : s_(normalize_newlines(src)) {}

  std::vector<Token> run() {
    bool strip_leading = false;  // previous tag ended with `-`
    while (p_ < s_.size()) {
      size_t start = find_tag(p_);
      std::string text = s_.substr(p_, start - p_);
      bool line_starting = p_ == 0 || s_[p_ - 1] == '\n';
      int text_line = line_;
      count_lines(p_, start);
      if (strip_leading) {
        size_t k = 0;
        while (k < text.size() && is_space(text[k])) ++k;
        text.erase(0, k);
      }
      strip_leading = false;
      if (start == s_.size()) {
        emit_text(std::move(text), text_line);
        break;
      }
      char kind = s_[start + 1];  // '{', '%' or '#'
      char mod = start + 2 < s_.size() ? s_[start + 2] : 0;
      if (mod == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (kind != '{' && mod != '+') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 || line_starting) {
          bool blank = true;
          for (size_t k = l_pos; k < text.size(); ++k) blank = blank && (text[k] == ' ' || text[k] == '\t');
          if (blank) text.erase(l_pos);
        }
      }
      emit_text(std::move(text), text_line);
      p_ = start + 2 + ((mod == '-' || mod == '+') ? 1 : 0);
      if (kind == '#') strip_leading = lex_comment();
      else if (kind == '{') strip_leading = lex_tag(Tok::VarBegin, Tok::VarEnd, '}');
      else strip_leading = lex_block();
    }
    out_.push_back({Tok::Eof, "", line_});
    return std::move(out_);
  }

 private:
  std::string s_;
  size_t p_ = 0;
  int line_ = 1;
  std::vector<Token> out_;

  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < s_.size(); ++i)
      if (s_[i] == '{' && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    return s_.size();
  }
  void count_lines(size_t a, size_t b) {
    for (size_t i = a; i < b && i < s_.size(); ++i) line_ += s_[i] == '\n';
  }
  void emit_text(std::string text, int line) {
    if (!text.empty()) out_.push_back({Tok::Text, std::move(text), line});
  }
  [[noreturn]] void fail(const std::string& msg) const { throw Error(cat("line ", line_, ": ", msg)); }

  // After `%}` / `#}`: trim_blocks eats one newline. Returns true when the tag ended with `-`.
  bool finish_tag(char mod, bool trim_newline) {
    if (mod == '-') return true;
    if (mod != '+' && trim_newline && p_ < s_.size() && s_[p_] == '\n') {
      ++p_;
      ++line_;
    }
    return false;
  }

  bool lex_comment() {
    size_t end = s_.find("#}", p_);
    if (end == std::string::npos) fail("unterminated comment: missing '#}'");
    char mod = end > p_ && (s_[end - 1] == '-' || s_[end - 1] == '+') ? s_[end - 1] : 0;
    count_lines(p_, end);
    p_ = end + 2;
    return finish_tag(mod, true);
  }

  bool lex_block() {
    // {% raw %}...{% endraw %} is copied verbatim.
    size_t q = p_;
    while (q < s_.size() && is_space(s_[q])) ++q;
    if (s_.compare(q, 3, "raw") == 0 && (q + 3 >= s_.size() || !(std::isalnum((unsigned char)s_[q + 3]) || s_[q + 3] == '_')))
      return lex_raw(q + 3);
    return lex_tag(Tok::BlockBegin, Tok::BlockEnd, '%');
  }

  bool lex_raw(size_t after_raw) {
    size_t q = after_raw;
    while (q < s_.size() && is_space(s_[q])) ++q;
    char mod = 0;
    if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) mod = s_[q++];
    if (s_.compare(q, 2, "%}") != 0) fail("expected '%}' after 'raw'");
    count_lines(p_, q + 2);
    p_ = q + 2;
    bool strip = finish_tag(mod, true);
    for (size_t i = p_; (i = s_.find("{%", i)) != std::string::npos; ++i) {
      size_t k = i + 2;
      char open_mod = k < s_.size() && (s_[k] == '-' || s_[k] == '+') ? s_[k] : 0;
      if (open_mod) ++k;
      while (k < s_.size() && is_space(s_[k])) ++k;
      if (s_.compare(k, 6, "endraw") != 0) continue;
      k += 6;
      while (k < s_.size() && is_space(s_[k])) ++k;
      char end_mod = 0;
      if (k < s_.size() && (s_[k] == '-' || s_[k] == '+')) end_mod = s_[k++];
      if (s_.compare(k, 2, "%}") != 0) continue;
      std::string text = s_.substr(p_, i - p_);
      if (strip) {
        size_t n = 0;
        while (n < text.size() && is_space(text[n])) ++n;
        text.erase(0, n);
      }
      if (open_mod == '-')
        while (!text.empty() && is_space(text.back())) text.pop_back();
      emit_text(std::move(text), line_);
      count_lines(p_, k + 2);
      p_ = k + 2;
      return finish_tag(end_mod, true);
    }
    fail("unterminated raw block: missing '{% endraw %}'");
  }

  // Expression tokens up to the closing `}}` / `%}` (not inside brackets, as in Jinja2).
  bool lex_tag(Tok begin, Tok end, char close) {
    out_.push_back({begin, "", line_});
    int depth = 0;
    while (true) {
      while (p_ < s_.size() && is_space(s_[p_])) line_ += s_[p_++] == '\n';
      if (p_ >= s_.size()) fail(cat("unexpected end of template, expected '", close, "}'"));
      char c = s_[p_];
      if (depth == 0) {
        char mod = (c == '-' || c == '+') ? c : 0;
        size_t at = p_ + (mod ? 1 : 0);
        if (at + 1 < s_.size() && s_[at] == close && s_[at + 1] == '}') {
          out_.push_back({end, "", line_});
          p_ = at + 2;
          if (mod == '-') return true;
          return close == '%' ? finish_tag(mod, true) : false;
        }
      }
      if (std::isalpha((unsigned char)c) || c == '_') {
        size_t b = p_;
        while (p_ < s_.size() && (std::isalnum((unsigned char)s_[p_]) || s_[p_] == '_')) ++p_;
        out_.push_back({Tok::Name, s_.substr(b, p_ - b), line_});
      } else if (std::isdigit((unsigned char)c)) {
        lex_number();
      } else if (c == '\'' || c == '"') {
        lex_string(c);
      } else {
        static const char* two[] = {"//", "**", "==", "!=", ">=", "<="};
        std::string op(1, c);
        for (const char* t : two)
          if (s_.compare(p_, 2, t) == 0) op = t;
        if (op.size() == 1 && (c == '\0' || !std::strchr("+-*/%~<>=()[]{},.:|", c)))
          fail(cat("unexpected character '", c, "'"));
        if (op == "(" || op == "[" || op == "{") ++depth;
        if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
        p_ += op.size();
        out_.push_back({Tok::Op, op, line_});
      }
    }
  }

  void lex_number() {
    size_t b = p_;
    bool is_float = false;
    auto digits = [&] { while (p_ < s_.size() && (std::isdigit((unsigned char)s_[p_]) || s_[p_] == '_')) ++p_; };
    digits();
    if (p_ + 1 < s_.size() && s_[p_] == '.' && std::isdigit((unsigned char)s_[p_ + 1])) {
      is_float = true;
      ++p_;
      digits();
    }
    if (p_ < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
      size_t q = p_ + 1;
      if (q < s_.size() && (s_[q] == '+' || s_[q] == '-')) ++q;
      if (q < s_.size() && std::isdigit((unsigned char)s_[q])) {
        is_float = true;
        p_ = q;
        digits();
      }
    }
    std::string spelled;
    for (size_t i = b; i < p_; ++i)
      if (s_[i] != '_') spelled += s_[i];
    Token t{is_float ? Tok::Float : Tok::Int, spelled, line_};
    try {
      if (is_float) t.float_value = std::stod(spelled);
      else t.int_value = std::stoll(spelled);
    } catch (const std::exception&) {
      if (is_float) t.float_value = spelled.find('-') != std::string::npos ? 0.0 : HUGE_VAL;
      else fail(cat("integer literal too large: ", spelled));
    }
    out_.push_back(std::move(t));
  }

  // Python 'unicode-escape' decoding, as Jinja2 applies to string literals.
  void lex_string(char quote) {
    int start_line = line_;
    std::string v;
    ++p_;
    while (true) {
      if (p_ >= s_.size()) { line_ = start_line; fail("unterminated string literal"); }
      char c = s_[p_++];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c != '\\') { v += c; continue; }
      if (p_ >= s_.size()) continue;
      char e = s_[p_++];
      auto hex = [&](int n) -> long {
        if (p_ + n > s_.size()) return -1;
        long cp = 0;
        for (int k = 0; k < n; ++k) {
          char h = s_[p_ + k];
          if (!std::isxdigit((unsigned char)h)) return -1;
          cp = cp * 16 + (std::isdigit((unsigned char)h) ? h - '0' : (std::tolower(h) - 'a' + 10));
        }
        p_ += n;
        return cp;
      };
      switch (e) {
        case 'n': v += '\n'; break;
        case 't': v += '\t'; break;
        case 'r': v += '\r'; break;
        case '\\': v += '\\'; break;
        case '\'': v += '\''; break;
        case '"': v += '"'; break;
        case 'a': v += '\a'; break;
        case 'b': v += '\b'; break;
        case 'f': v += '\f'; break;
        case 'v': v += '\v'; break;
        case '\n': ++line_; break;  // line continuation
        case 'x': case 'u': case 'U': {
          long cp = hex(e == 'x' ? 2 : e == 'u' ? 4 : 8);
          if (cp < 0 || cp > 0x10FFFF) fail(cat("invalid \\", e, " escape in string literal"));
          append_utf8(v, uint32_t(cp));
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            int cp = e - '0';
            for (int k = 0; k < 2 && p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '7'; ++k) cp = cp * 8 + (s_[p_++] - '0');
            append_utf8(v, uint32_t(cp));
          } else {
            v += '\\';
            v += e;
          }
      }
    }
    out_.push_back({Tok::String, std::move(v), start_line});
  }
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) { return Lexer(source).run(); }

}  // namespace brisk::text::jinja
