// Jinja2's built-in filters and tests, the Python str/dict/list methods templates call, and
// the globals transformers provides (range, dict, namespace, raise_exception, strftime_now).
#pragma once
#include <string>
#include <unordered_map>

#include "text/jinja/interpreter.h"

namespace brisk::text::jinja {

using FilterFn = Value (*)(Interpreter&, const Value&, CallArgs&);
using TestFn = bool (*)(Interpreter&, const Value&, CallArgs&);

const std::unordered_map<std::string, FilterFn>& builtin_filters();  // filters.cpp
const std::unordered_map<std::string, TestFn>& builtin_tests();      // tests.cpp
// obj.name as a bound method (str, dict, list methods); undefined when there is none.
Value bound_method(const Value& obj, const std::string& name);       // methods.cpp
void add_builtin_globals(Frame& globals);                            // globals.cpp

// Shared argument helpers: the named/positional argument or a default.
int64_t arg_int(const CallArgs& a, size_t idx, const std::string& name, int64_t def);
bool arg_bool(const CallArgs& a, size_t idx, const std::string& name, bool def);
std::string arg_str(const CallArgs& a, size_t idx, const std::string& name, const std::string& def);

}  // namespace brisk::text::jinja
