#include "text/jinja/template.h"

#include "core/error.h"
#include "text/jinja/builtins.h"
#include "text/jinja/parser.h"

namespace brisk::text::jinja {

Template::Template(const std::string& source) {
  KnownNames names{[](const std::string& n) { return builtin_filters().count(n) > 0; },
                   [](const std::string& n) { return builtin_tests().count(n) > 0; }};
  body_ = std::make_shared<const Body>(parse(source, names));
}

std::string Template::render(const Value& vars, const Limits& limits) const {
  auto globals = std::make_shared<Frame>();
  add_builtin_globals(*globals);
  auto ctx = std::make_shared<Frame>();
  ctx->parent = globals;
  if (vars.is_mapping())
    for (auto& [k, v] : vars.dict->items)
      if (k.is_string()) ctx->vars[k.s] = v;
  Interpreter in(*body_, ctx, limits);
  return in.render();
}

}  // namespace brisk::text::jinja
