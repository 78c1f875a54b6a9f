// Jinja2's built-in tests (`x is defined`, `x is string`, ...).
#include "core/error.h"
#include "text/jinja/builtins.h"
#include "text/jinja/strings.h"

namespace brisk::text::jinja {
namespace {

const Value& arg0(const CallArgs& a, const char* test) {
  const Value* v = a.get(0, "other");
  if (!v) throw Error(cat("test '", test, "' needs an argument"));
  return *v;
}
bool cmp(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (op == "lt") return py_less(a, b);
  if (op == "gt") return py_less(b, a);
  if (op == "le") return !py_less(b, a);
  return !py_less(a, b);
}
int64_t int_of(const Value& v, const char* test) {
  if (v.is_undefined()) undefined_error(v);
  if (v.kind != Kind::Int && v.kind != Kind::Bool) throw Error(cat("test '", test, "' needs an integer"));
  return v.i;
}

}  // namespace

const std::unordered_map<std::string, TestFn>& builtin_tests() {
  static const std::unordered_map<std::string, TestFn> t = {
      {"defined", [](Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); }},
      {"none", [](Interpreter&, const Value& v, CallArgs&) { return v.is_none(); }},
      {"string", [](Interpreter&, const Value& v, CallArgs&) { return v.is_string(); }},
      {"mapping", [](Interpreter&, const Value& v, CallArgs&) { return v.is_mapping(); }},
      // Undefined is iterable (empty) and has __len__/__getitem__ in Jinja2.
      {"iterable", [](Interpreter&, const Value& v, CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_sequence() || v.is_mapping();
       }},
      {"sequence", [](Interpreter&, const Value& v, CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_sequence() || v.is_mapping();
       }},
      {"number", [](Interpreter&, const Value& v, CallArgs&) { return v.is_number(); }},
      {"integer", [](Interpreter&, const Value& v, CallArgs&) { return v.kind == Kind::Int; }},
      {"float", [](Interpreter&, const Value& v, CallArgs&) { return v.kind == Kind::Float; }},
      {"boolean", [](Interpreter&, const Value& v, CallArgs&) { return v.kind == Kind::Bool; }},
      {"true", [](Interpreter&, const Value& v, CallArgs&) { return v.kind == Kind::Bool && v.i; }},
      {"false", [](Interpreter&, const Value& v, CallArgs&) { return v.kind == Kind::Bool && !v.i; }},
      {"callable", [](Interpreter&, const Value& v, CallArgs&) { return v.kind == Kind::Callable; }},
      {"escaped", [](Interpreter&, const Value&, CallArgs&) { return false; }},
      {"odd", [](Interpreter&, const Value& v, CallArgs&) { return (int_of(v, "odd") & 1) != 0; }},
      {"even", [](Interpreter&, const Value& v, CallArgs&) { return (int_of(v, "even") & 1) == 0; }},
      {"divisibleby", [](Interpreter&, const Value& v, CallArgs& a) {
         int64_t n = int_of(arg0(a, "divisibleby"), "divisibleby");
         if (n == 0) throw Error("integer division or modulo by zero");
         return int_of(v, "divisibleby") % n == 0;
       }},
      {"lower", [](Interpreter&, const Value& v, CallArgs&) {
         std::string s = py_str(v);
         return py_lower(s) == s && py_upper(s) != s;
       }},
      {"upper", [](Interpreter&, const Value& v, CallArgs&) {
         std::string s = py_str(v);
         return py_upper(s) == s && py_lower(s) != s;
       }},
      {"in", [](Interpreter&, const Value& v, CallArgs& a) { return py_contains(arg0(a, "in"), v); }},
      {"sameas", [](Interpreter&, const Value& v, CallArgs& a) {
         const Value& o = arg0(a, "sameas");
         if (v.kind != o.kind) return false;
         switch (v.kind) {
           case Kind::None: case Kind::Undefined: return true;
           case Kind::Bool: return v.i == o.i;
           case Kind::List: case Kind::Tuple: return v.list == o.list;
           case Kind::Dict: case Kind::Namespace: return v.dict == o.dict;
           case Kind::Callable: return v.fn == o.fn;
           default: return py_equal(v, o);  // small ints / interned strings: CPython identity varies
         }
       }},
      {"eq", [](Interpreter&, const Value& v, CallArgs& a) { return py_equal(v, arg0(a, "eq")); }},
      {"equalto", [](Interpreter&, const Value& v, CallArgs& a) { return py_equal(v, arg0(a, "equalto")); }},
      {"ne", [](Interpreter&, const Value& v, CallArgs& a) { return !py_equal(v, arg0(a, "ne")); }},
      {"lt", [](Interpreter&, const Value& v, CallArgs& a) { return cmp("lt", v, arg0(a, "lt")); }},
      {"lessthan", [](Interpreter&, const Value& v, CallArgs& a) { return cmp("lt", v, arg0(a, "lessthan")); }},
      {"le", [](Interpreter&, const Value& v, CallArgs& a) { return cmp("le", v, arg0(a, "le")); }},
      {"gt", [](Interpreter&, const Value& v, CallArgs& a) { return cmp("gt", v, arg0(a, "gt")); }},
      {"greaterthan", [](Interpreter&, const Value& v, CallArgs& a) { return cmp("gt", v, arg0(a, "greaterthan")); }},
      {"ge", [](Interpreter&, const Value& v, CallArgs& a) { return cmp("ge", v, arg0(a, "ge")); }},
      {"filter", [](Interpreter&, const Value& v, CallArgs&) { return v.is_string() && builtin_filters().count(v.s) > 0; }},
      {"test", [](Interpreter&, const Value& v, CallArgs&) { return v.is_string() && builtin_tests().count(v.s) > 0; }},
  };
  return t;
}

}  // namespace brisk::text::jinja
