#include "text/tok_regex.h"

#include <pcre2.h>

#include "core/error.h"
#include "text/tok_json.h"

namespace brisk::text {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
};

Regex::Regex(const std::string& pattern, const std::string& what) : impl_(std::make_unique<Impl>()) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &err_off, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(cat("invalid regex in ", what, " at offset ", err_off, ": ", reinterpret_cast<char*>(msg),
                    " (pattern: ", pattern, ")"));
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  // Match data is tiny; one per thread avoids a malloc per call and keeps sharing safe.
  thread_local struct Data {
    pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
    ~Data() { pcre2_match_data_free(md); }
  } data;
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    // Input was validated as UTF-8 at the API boundary, so PCRE2's own check is skipped.
    int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, data.md, nullptr)
                        : pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, data.md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(cat("regex match failed: ", reinterpret_cast<char*>(msg)));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.md);
    size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.emplace_back(b, e);
      pos = e;
    } else {  // empty match: step one character forward
      pos = b + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
    }
  }
  return out;
}

Pattern Pattern::from_json(const nlohmann::json& j, const std::string& where) {
  BRISK_CHECK(j.is_object() && j.size() == 1, where, " must be {\"String\": ...} or {\"Regex\": ...}");
  Pattern p;
  if (auto it = j.find("String"); it != j.end()) {
    BRISK_CHECK(it->is_string(), where, ".String must be a string");
    p.literal_ = it->get<std::string>();
    BRISK_CHECK(!p.literal_.empty(), where, ".String must not be empty");
  } else if (auto it = j.find("Regex"); it != j.end()) {
    BRISK_CHECK(it->is_string(), where, ".Regex must be a string");
    p.regex_ = std::make_shared<const Regex>(it->get<std::string>(), where);
  } else {
    throw Error(cat("unsupported pattern kind \"", j.begin().key(), "\" in ", where));
  }
  return p;
}

std::vector<std::pair<size_t, size_t>> Pattern::find_all(std::string_view text) const {
  if (regex_) return regex_->find_all(text);
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t at = text.find(literal_); at != std::string_view::npos; at = text.find(literal_, at + literal_.size()))
    out.emplace_back(at, at + literal_.size());
  return out;
}

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  std::string out;
  size_t prev = 0;
  for (auto [b, e] : find_all(text)) {
    out.append(text.substr(prev, b - prev));
    out.append(content);
    prev = e;
  }
  out.append(text.substr(prev));
  return out;
}

}  // namespace brisk::text
