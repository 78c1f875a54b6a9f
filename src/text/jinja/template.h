// Public face of the Jinja engine: parse once, render many times.
//   jinja::Template t(source);                 // syntax errors: brisk::Error "line N: ..."
//   std::string out = t.render(vars);          // vars: a Dict value; runtime errors likewise
#pragma once
#include <memory>
#include <string>

#include "text/jinja/ast.h"
#include "text/jinja/interpreter.h"
#include "text/jinja/value.h"

namespace brisk::text::jinja {

class Template {
 public:
  explicit Template(const std::string& source);
  // vars: a Dict of template variables (Value::make_dict()); globals (range, namespace,
  // raise_exception, strftime_now, ...) are added underneath them.
  std::string render(const Value& vars, const Limits& limits = {}) const;

 private:
  std::shared_ptr<const Body> body_;
};

}  // namespace brisk::text::jinja
