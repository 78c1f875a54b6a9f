// Python str operations on UTF-8 strings (whitespace, strip, split, case), shared by the
// filters and the str methods.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace brisk::text::jinja {

// Largest string the engine builds: bounds memory on hostile templates (x ~ x in a loop, ...).
constexpr size_t kMaxStringBytes = 64u << 20;

bool py_isspace(uint32_t cp);  // str.isspace() for one code point
std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right);
std::vector<std::string> py_split(const std::string& s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> py_rsplit(const std::string& s, const std::string* sep, int64_t maxsplit);
std::string py_upper(const std::string& s);  // ASCII letters only (see README note in chat_template.h)
std::string py_lower(const std::string& s);
std::string py_capitalize(const std::string& s);
std::string py_title(const std::string& s);  // str.title()
std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count);

}  // namespace brisk::text::jinja
