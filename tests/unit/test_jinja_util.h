// Shared helper for the Jinja unit tests: render a template against JSON variables.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/jinja/template.h"

namespace brisk::text::jinja::testing {

inline std::string render(const std::string& src, const nlohmann::ordered_json& vars = nlohmann::ordered_json::object()) {
  Template t(src);
  return t.render(from_json(vars));
}

// The error message a template raises (parse or render), or "" when it renders.
inline std::string error_of(const std::string& src, const nlohmann::ordered_json& vars = nlohmann::ordered_json::object()) {
  try {
    render(src, vars);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace brisk::text::jinja::testing
