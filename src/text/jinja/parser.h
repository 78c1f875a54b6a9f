// Tokens -> syntax tree, with Jinja2's operator precedence and statement set (the subset chat
// templates use: if, for, set, macro, call, filter, break/continue, raw, generation).
#pragma once
#include <functional>
#include <string>

#include "text/jinja/ast.h"
#include "text/jinja/lexer.h"

namespace brisk::text::jinja {

// Names of known filters and tests: unknown ones are compile-time errors, as in Jinja2.
struct KnownNames {
  std::function<bool(const std::string&)> is_filter;
  std::function<bool(const std::string&)> is_test;
};

// Throws brisk::Error "line N: ..." on syntax errors.
Body parse(const std::string& source, const KnownNames& names);

}  // namespace brisk::text::jinja
