// Values of the Jinja interpreter, with Python semantics: what Jinja2 (running on CPython) does
// with the dicts, lists, strings and numbers that transformers passes to a chat template.
// Printing follows Python str()/repr(), truthiness and equality follow Python, and json_dumps
// matches json.dumps(x, ensure_ascii=False) byte for byte.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace brisk::text::jinja {

struct Value;
struct Dict;
struct Callable;
class Interpreter;

using List = std::vector<Value>;

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Tuple, Dict, Namespace, Callable };

struct Value {
  Kind kind = Kind::Undefined;
  // Int and Bool use i; Float uses f; String and Undefined (its name, for messages) use s.
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<List> list;      // List, Tuple (shared: Jinja values are references)
  std::shared_ptr<Dict> dict;      // Dict, Namespace
  std::shared_ptr<Callable> fn;    // Callable

  static Value undefined(std::string name = {}) { Value v; v.s = std::move(name); return v; }
  static Value none() { Value v; v.kind = Kind::None; return v; }
  static Value boolean(bool b) { Value v; v.kind = Kind::Bool; v.i = b; return v; }
  static Value integer(int64_t i) { Value v; v.kind = Kind::Int; v.i = i; return v; }
  static Value floating(double f) { Value v; v.kind = Kind::Float; v.f = f; return v; }
  static Value string(std::string s) { Value v; v.kind = Kind::String; v.s = std::move(s); return v; }
  static Value make_list(List items = {});
  static Value make_tuple(List items);
  static Value make_dict();
  static Value make_namespace();
  static Value callable(std::string name, std::function<Value(Interpreter&, struct CallArgs&)> fn);

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_sequence() const { return kind == Kind::List || kind == Kind::Tuple; }
  bool is_mapping() const { return kind == Kind::Dict; }
};

// Insertion-ordered dict (Python dicts and JSON objects keep key order). Small: linear lookup.
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const;
  void set(const Value& key, Value v);
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Takes argument `name` (position idx or keyword); nullptr when absent.
  const Value* get(size_t idx, const std::string& name) const;
};

struct Callable {
  std::string name;
  std::function<Value(Interpreter&, CallArgs&)> fn;
};

// Python semantics.
bool truthy(const Value& v);
bool py_equal(const Value& a, const Value& b);
std::string py_str(const Value& v);   // str(v); undefined -> ""
std::string py_repr(const Value& v);  // repr(v)
std::string format_float(double d);   // float.__repr__
const char* type_name(const Value& v);  // Python type name for messages: 'str', 'dict', ...
// Python's < (numbers, strings, sequences); throws brisk::Error for unorderable types.
bool py_less(const Value& a, const Value& b);

// UTF-8 helpers: Python indexes strings by code point.
std::vector<std::string> utf8_chars(const std::string& s);
size_t utf8_length(const std::string& s);

// JSON bridge (ordered_json keeps object key order).
Value from_json(const nlohmann::ordered_json& j);
struct JsonDumpOptions {
  int indent = -1;  // -1: None (one line). With an indent, Python's default item_sep is ","
  std::string indent_str;  // used when indent is a string
  bool indent_is_string = false;
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool sort_keys = false;
};
std::string json_dumps(const Value& v, const JsonDumpOptions& opt);  // throws for non-JSON values

}  // namespace brisk::text::jinja
