// Python methods on str, dict and list that templates call (message.content.strip(),
// d.items(), ...). Mutating methods are refused as in transformers' ImmutableSandboxedEnvironment:
// the attribute is an undefined whose use raises "access to attribute ... is unsafe".
#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "text/jinja/builtins.h"
#include "text/jinja/strings.h"

namespace brisk::text::jinja {
namespace {

using Method = Value (*)(Interpreter&, const Value& self, CallArgs&);

const std::string* opt_str(const CallArgs& a, size_t i, const std::string& name) {
  const Value* v = a.get(i, name);
  if (!v || v->is_none()) return nullptr;
  if (!v->is_string()) throw Error(cat(name, " must be str or None, not ", type_name(*v)));
  return &v->s;
}
const std::string& need_str(const CallArgs& a, size_t i, const std::string& name) {
  const Value* v = a.get(i, name);
  if (!v) throw Error(cat("missing required argument '", name, "'"));
  if (!v->is_string()) throw Error(cat("argument '", name, "' must be str, not ", type_name(*v)));
  return v->s;
}
Value str_list(const std::vector<std::string>& parts) {
  List out;
  for (auto& p : parts) out.push_back(Value::string(p));
  return Value::make_list(std::move(out));
}
bool all_chars(const std::string& s, int (*pred)(int)) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (c >= 0x80 || !pred(c)) return false;
  return true;
}
Value affix_test(const Value& self, CallArgs& a, bool start) {
  const Value* arg = a.get(0, "prefix");
  if (!arg) throw Error(cat(start ? "startswith" : "endswith", "() takes at least 1 argument"));
  List options = arg->kind == Kind::Tuple ? *arg->list : List{*arg};
  for (auto& o : options) {
    if (!o.is_string()) throw Error(cat(start ? "startswith" : "endswith", " first arg must be str or a tuple of str"));
    const std::string& s = self.s;
    bool hit = start ? s.compare(0, o.s.size(), o.s) == 0 && s.size() >= o.s.size()
                     : s.size() >= o.s.size() && s.compare(s.size() - o.s.size(), o.s.size(), o.s) == 0;
    if (hit) return Value::boolean(true);
  }
  return Value::boolean(false);
}

// str.format with {}, {0}, {name} fields (no format specs: chat templates do not use them).
Value str_format(const std::string& fmt, const CallArgs& a) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') { out += '{'; ++i; continue; }
    if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') { out += '}'; ++i; continue; }
    if (c == '}') throw Error("Single '}' encountered in format string");
    if (c != '{') { out += c; continue; }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) throw Error("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    if (field.find(':') != std::string::npos || field.find('!') != std::string::npos)
      throw Error("format specs in str.format are not supported");
    const Value* v = nullptr;
    if (field.empty()) {
      if (auto_idx >= a.pos.size()) throw Error("Replacement index out of range for positional args tuple");
      v = &a.pos[auto_idx++];
    } else if (std::all_of(field.begin(), field.end(), [](char ch) { return std::isdigit((unsigned char)ch); })) {
      size_t k = std::stoul(field);
      if (k >= a.pos.size()) throw Error("Replacement index out of range for positional args tuple");
      v = &a.pos[k];
    } else {
      for (auto& [name, val] : a.kw)
        if (name == field) v = &val;
      if (!v) throw Error(cat("KeyError: '", field, "'"));
    }
    out += py_str(*v);
    i = close;
  }
  return Value::string(std::move(out));
}

Value find_sub(const Value& self, CallArgs& a, bool reverse, bool must_find) {
  const std::string& sub = need_str(a, 0, "sub");
  size_t f = reverse ? self.s.rfind(sub) : self.s.find(sub);
  if (f == std::string::npos) {
    if (must_find) throw Error("substring not found");
    return Value::integer(-1);
  }
  return Value::integer(int64_t(utf8_length(self.s.substr(0, f))));
}

const std::unordered_map<std::string, Method>& str_methods() {
  static const std::unordered_map<std::string, Method> m = {
      {"strip", [](Interpreter&, const Value& s, CallArgs& a) { return Value::string(py_strip(s.s, opt_str(a, 0, "chars"), true, true)); }},
      {"lstrip", [](Interpreter&, const Value& s, CallArgs& a) { return Value::string(py_strip(s.s, opt_str(a, 0, "chars"), true, false)); }},
      {"rstrip", [](Interpreter&, const Value& s, CallArgs& a) { return Value::string(py_strip(s.s, opt_str(a, 0, "chars"), false, true)); }},
      {"split", [](Interpreter&, const Value& s, CallArgs& a) { return str_list(py_split(s.s, opt_str(a, 0, "sep"), arg_int(a, 1, "maxsplit", -1))); }},
      {"rsplit", [](Interpreter&, const Value& s, CallArgs& a) { return str_list(py_rsplit(s.s, opt_str(a, 0, "sep"), arg_int(a, 1, "maxsplit", -1))); }},
      {"splitlines", [](Interpreter&, const Value& s, CallArgs&) {
         std::vector<std::string> lines;
         std::string cur;
         for (size_t i = 0; i < s.s.size(); ++i) {
           char c = s.s[i];
           if (c == '\n' || c == '\r') {
             lines.push_back(cur);
             cur.clear();
             if (c == '\r' && i + 1 < s.s.size() && s.s[i + 1] == '\n') ++i;
           } else {
             cur += c;
           }
         }
         if (!cur.empty()) lines.push_back(cur);
         return str_list(lines);
       }},
      {"startswith", [](Interpreter&, const Value& s, CallArgs& a) { return affix_test(s, a, true); }},
      {"endswith", [](Interpreter&, const Value& s, CallArgs& a) { return affix_test(s, a, false); }},
      {"replace", [](Interpreter&, const Value& s, CallArgs& a) {
         return Value::string(py_replace(s.s, need_str(a, 0, "old"), need_str(a, 1, "new"), arg_int(a, 2, "count", -1)));
       }},
      {"upper", [](Interpreter&, const Value& s, CallArgs&) { return Value::string(py_upper(s.s)); }},
      {"lower", [](Interpreter&, const Value& s, CallArgs&) { return Value::string(py_lower(s.s)); }},
      {"title", [](Interpreter&, const Value& s, CallArgs&) { return Value::string(py_title(s.s)); }},
      {"capitalize", [](Interpreter&, const Value& s, CallArgs&) { return Value::string(py_capitalize(s.s)); }},
      {"find", [](Interpreter&, const Value& s, CallArgs& a) { return find_sub(s, a, false, false); }},
      {"rfind", [](Interpreter&, const Value& s, CallArgs& a) { return find_sub(s, a, true, false); }},
      {"index", [](Interpreter&, const Value& s, CallArgs& a) { return find_sub(s, a, false, true); }},
      {"count", [](Interpreter&, const Value& s, CallArgs& a) {
         const std::string& sub = need_str(a, 0, "sub");
         if (sub.empty()) return Value::integer(int64_t(utf8_length(s.s)) + 1);
         int64_t n = 0;
         for (size_t p = s.s.find(sub); p != std::string::npos; p = s.s.find(sub, p + sub.size())) ++n;
         return Value::integer(n);
       }},
      {"join", [](Interpreter& in, const Value& s, CallArgs& a) {
         const Value* it = a.get(0, "iterable");
         if (!it) throw Error("join() takes exactly one argument");
         std::string out;
         bool first = true;
         for (const Value& x : in.iterate(*it)) {
           if (!x.is_string()) throw Error(cat("sequence item: expected str instance, ", type_name(x), " found"));
           out += (first ? "" : s.s) + x.s;
           first = false;
         }
         return Value::string(std::move(out));
       }},
      {"format", [](Interpreter&, const Value& s, CallArgs& a) { return str_format(s.s, a); }},
      {"isdigit", [](Interpreter&, const Value& s, CallArgs&) { return Value::boolean(all_chars(s.s, isdigit)); }},
      {"isnumeric", [](Interpreter&, const Value& s, CallArgs&) { return Value::boolean(all_chars(s.s, isdigit)); }},
      {"isdecimal", [](Interpreter&, const Value& s, CallArgs&) { return Value::boolean(all_chars(s.s, isdigit)); }},
      {"isalpha", [](Interpreter&, const Value& s, CallArgs&) { return Value::boolean(all_chars(s.s, isalpha)); }},
      {"isalnum", [](Interpreter&, const Value& s, CallArgs&) { return Value::boolean(all_chars(s.s, isalnum)); }},
      {"isspace", [](Interpreter&, const Value& s, CallArgs&) {
         if (s.s.empty()) return Value::boolean(false);
         return Value::boolean(py_strip(s.s, nullptr, true, true).empty());
       }},
      {"islower", [](Interpreter&, const Value& s, CallArgs&) {
         bool cased = std::any_of(s.s.begin(), s.s.end(), [](char c) { return std::isalpha((unsigned char)c); });
         return Value::boolean(cased && py_lower(s.s) == s.s);
       }},
      {"isupper", [](Interpreter&, const Value& s, CallArgs&) {
         bool cased = std::any_of(s.s.begin(), s.s.end(), [](char c) { return std::isalpha((unsigned char)c); });
         return Value::boolean(cased && py_upper(s.s) == s.s);
       }},
      {"removeprefix", [](Interpreter&, const Value& s, CallArgs& a) {
         const std::string& p = need_str(a, 0, "prefix");
         return Value::string(s.s.compare(0, p.size(), p) == 0 ? s.s.substr(p.size()) : s.s);
       }},
      {"removesuffix", [](Interpreter&, const Value& s, CallArgs& a) {
         const std::string& p = need_str(a, 0, "suffix");
         bool hit = !p.empty() && s.s.size() >= p.size() && s.s.compare(s.s.size() - p.size(), p.size(), p) == 0;
         return Value::string(hit ? s.s.substr(0, s.s.size() - p.size()) : s.s);
       }},
  };
  return m;
}

const std::unordered_map<std::string, Method>& dict_methods() {
  static const std::unordered_map<std::string, Method> m = {
      {"get", [](Interpreter&, const Value& d, CallArgs& a) {
         const Value* k = a.get(0, "key");
         if (!k) throw Error("get expected at least 1 argument, got 0");
         const Value* v = d.dict->find(*k);
         if (v) return *v;
         const Value* def = a.get(1, "default");
         return def ? *def : Value::none();
       }},
      {"items", [](Interpreter&, const Value& d, CallArgs&) {
         List out;
         for (auto& [k, v] : d.dict->items) out.push_back(Value::make_tuple({k, v}));
         return Value::make_list(std::move(out));
       }},
      {"keys", [](Interpreter&, const Value& d, CallArgs&) {
         List out;
         for (auto& kv : d.dict->items) out.push_back(kv.first);
         return Value::make_list(std::move(out));
       }},
      {"values", [](Interpreter&, const Value& d, CallArgs&) {
         List out;
         for (auto& kv : d.dict->items) out.push_back(kv.second);
         return Value::make_list(std::move(out));
       }},
  };
  return m;
}

const std::unordered_map<std::string, Method>& list_methods() {
  static const std::unordered_map<std::string, Method> m = {
      {"index", [](Interpreter&, const Value& l, CallArgs& a) {
         const Value* x = a.get(0, "value");
         if (!x) throw Error("index expected 1 argument");
         for (size_t i = 0; i < l.list->size(); ++i)
           if (py_equal((*l.list)[i], *x)) return Value::integer(int64_t(i));
         throw Error(cat(py_repr(*x), " is not in list"));
       }},
      {"count", [](Interpreter&, const Value& l, CallArgs& a) {
         const Value* x = a.get(0, "value");
         if (!x) throw Error("count expected 1 argument");
         int64_t n = 0;
         for (auto& e : *l.list) n += py_equal(e, *x);
         return Value::integer(n);
       }},
  };
  return m;
}

bool is_mutator(Kind k, const std::string& name) {
  static const char* list_mut[] = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"};
  static const char* dict_mut[] = {"update", "pop", "popitem", "setdefault", "clear"};
  if (k == Kind::List)
    for (const char* m : list_mut) if (name == m) return true;
  if (k == Kind::Dict)
    for (const char* m : dict_mut) if (name == m) return true;
  return false;
}

}  // namespace

Value bound_method(const Value& obj, const std::string& name) {
  const std::unordered_map<std::string, Method>* table = nullptr;
  if (obj.is_string()) table = &str_methods();
  else if (obj.is_mapping()) table = &dict_methods();
  else if (obj.is_sequence()) table = &list_methods();
  if (!table) return Value::undefined();
  auto it = table->find(name);
  if (it == table->end()) {
    if (is_mutator(obj.kind, name))
      return Value::undefined(cat("access to attribute '", name, "' of '", type_name(obj),
                                  "' object is unsafe (transformers renders templates in an immutable sandbox)"));
    return Value::undefined();
  }
  Method fn = it->second;
  Value self = obj;
  return Value::callable(name, [fn, self](Interpreter& in, CallArgs& a) { return fn(in, self, a); });
}

}  // namespace brisk::text::jinja
