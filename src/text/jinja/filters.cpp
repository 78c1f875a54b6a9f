// Jinja2's built-in filters plus transformers' tojson (ensure_ascii=False, indent, separators,
// sort_keys). Behaviour follows jinja2/filters.py, including its quirks (indent skips the first
// line, round is Python's banker's rounding, default only replaces undefined unless boolean).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "text/jinja/builtins.h"
#include "text/jinja/strings.h"

namespace brisk::text::jinja {

int64_t arg_int(const CallArgs& a, size_t idx, const std::string& name, int64_t def) {
  const Value* v = a.get(idx, name);
  if (!v || v->is_none()) return def;
  if (v->kind == Kind::Float) return int64_t(v->f);
  if (v->kind != Kind::Int && v->kind != Kind::Bool) throw Error(cat("argument '", name, "' must be an integer, not ", type_name(*v)));
  return v->i;
}
bool arg_bool(const CallArgs& a, size_t idx, const std::string& name, bool def) {
  const Value* v = a.get(idx, name);
  return v ? truthy(*v) : def;
}
std::string arg_str(const CallArgs& a, size_t idx, const std::string& name, const std::string& def) {
  const Value* v = a.get(idx, name);
  return v && !v->is_none() ? py_str(*v) : def;
}

namespace {

std::string escape_html(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&#34;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

// jinja2's make_attrgetter: "a.b.0" walks items/attributes; integers index.
Value get_path(Interpreter& in, const Value& obj, const Value& attr) {
  if (!attr.is_string()) return in.get_item(obj, attr);
  Value cur = obj;
  size_t pos = 0;
  while (true) {
    size_t dot = attr.s.find('.', pos);
    std::string part = attr.s.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit((unsigned char)c); });
    cur = in.get_item(cur, digits ? Value::integer(std::stoll(part)) : Value::string(part));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

// Sort key: lower-cased strings unless case_sensitive (jinja2's ignore_case postprocess).
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(py_lower(v.s));
  return v;
}

CallArgs rest_args(const CallArgs& a, size_t from) {
  CallArgs r;
  for (size_t i = from; i < a.pos.size(); ++i) r.pos.push_back(a.pos[i]);
  r.kw = a.kw;
  return r;
}

// select/reject/selectattr/rejectattr share one engine.
Value select_impl(Interpreter& in, const Value& v, CallArgs& a, bool with_attr, bool keep) {
  size_t i = 0;
  Value attr;
  if (with_attr) {
    if (a.pos.empty()) throw Error("selectattr/rejectattr need an attribute name");
    attr = a.pos[i++];
  }
  std::string test;
  if (i < a.pos.size()) test = py_str(a.pos[i++]);
  CallArgs test_args = rest_args(a, i);
  List out;
  for (const Value& item : in.iterate(v)) {
    in.step();
    Value x = with_attr ? get_path(in, item, attr) : item;
    bool ok = test.empty() ? truthy(x) : in.apply_test(test, x, test_args);
    if (ok == keep) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

Value tojson(Interpreter&, const Value& v, CallArgs& a) {
  JsonDumpOptions o;
  // HF signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False);
  // templates pass indent by keyword (a positional `tojson(4)` is ensure_ascii, as in HF).
  const Value* indent = a.get(1, "indent");
  bool ensure_ascii = arg_bool(a, 0, "ensure_ascii", false);
  if (indent && !indent->is_none()) {
    if (indent->is_string()) { o.indent_is_string = true; o.indent_str = indent->s; }
    else o.indent = int(std::clamp<int64_t>(arg_int(a, 1, "indent", 0), 0, 1024));  // bound memory
    o.item_sep = ",";
  }
  if (const Value* sep = a.get(2, "separators"); sep && !sep->is_none()) {
    List parts = sep->is_sequence() ? *sep->list : List{};
    if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string())
      throw Error("tojson separators must be an (item_separator, key_separator) pair");
    o.item_sep = parts[0].s;
    o.key_sep = parts[1].s;
  }
  o.sort_keys = arg_bool(a, 3, "sort_keys", false);
  if (v.is_undefined()) throw Error("Object of type Undefined is not JSON serializable");
  std::string out = json_dumps(v, o);
  if (!ensure_ascii) return Value::string(std::move(out));
  std::string ascii;
  for (const std::string& ch : utf8_chars(out)) {
    if (ch.size() == 1) { ascii += ch; continue; }
    unsigned char c0 = static_cast<unsigned char>(ch[0]);
    uint32_t cp = c0 & (0xFF >> (ch.size() + 1));
    for (size_t i = 1; i < ch.size(); ++i) cp = (cp << 6) | (static_cast<unsigned char>(ch[i]) & 0x3F);
    char buf[16];
    if (cp >= 0x10000) {
      cp -= 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
    } else {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
    }
    ascii += buf;
  }
  return Value::string(std::move(ascii));
}

Value length(Interpreter&, const Value& v, CallArgs&) {
  switch (v.kind) {
    case Kind::Undefined: return Value::integer(0);
    case Kind::String: return Value::integer(int64_t(utf8_length(v.s)));
    case Kind::List: case Kind::Tuple: return Value::integer(int64_t(v.list->size()));
    case Kind::Dict: return Value::integer(int64_t(v.dict->items.size()));
    default: throw Error(cat("object of type '", type_name(v), "' has no len()"));
  }
}

Value py_round(const Value& v, int64_t precision, const std::string& method) {
  if (v.is_undefined()) undefined_error(v);
  if (!v.is_number()) throw Error(cat("round: expected a number, got ", type_name(v)));
  if (method == "common") {
    if (v.kind != Kind::Float) return Value::integer(v.i);  // round(int, n) stays an int
    if (!std::isfinite(v.f)) return v;
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", int(std::clamp<int64_t>(precision, 0, 300)), v.f);  // correctly rounded, ties to even
    return Value::floating(std::strtod(buf, nullptr));
  }
  double scale = std::pow(10.0, double(precision));
  double x = (v.kind == Kind::Float ? v.f : double(v.i)) * scale;
  if (method == "ceil") x = std::ceil(x);
  else if (method == "floor") x = std::floor(x);
  else throw Error("round: method must be 'common', 'ceil' or 'floor'");
  return Value::floating(x / scale);
}

Value min_max(Interpreter& in, const Value& v, CallArgs& a, bool want_max) {
  bool cs = arg_bool(a, 0, "case_sensitive", false);
  const Value* attr = a.get(1, "attribute");
  List items = in.iterate(v);
  if (items.empty()) return Value::undefined("no items in sequence");
  size_t best = 0;
  auto key = [&](const Value& x) { return sort_key(attr ? get_path(in, x, *attr) : x, cs); };
  for (size_t i = 1; i < items.size(); ++i) {
    bool better = want_max ? py_less(key(items[best]), key(items[i])) : py_less(key(items[i]), key(items[best]));
    if (better) best = i;
  }
  return items[best];
}

Value to_int(const Value& v, CallArgs& a) {
  int64_t def = arg_int(a, 0, "default", 0);
  int64_t base = arg_int(a, 1, "base", 10);
  switch (v.kind) {
    case Kind::Int: case Kind::Bool: return Value::integer(v.i);
    case Kind::Float:
      if (!std::isfinite(v.f) || std::fabs(v.f) > 9.2e18) return Value::integer(def);
      return Value::integer(int64_t(v.f));
    case Kind::String: {
      std::string s = py_strip(v.s, nullptr, true, true);
      std::string digits;
      for (char c : s) if (c != '_') digits += c;
      char* end = nullptr;
      errno = 0;
      long long n = std::strtoll(digits.c_str(), &end, int(base));
      if (!digits.empty() && end && *end == 0 && errno == 0) return Value::integer(n);
      double d = std::strtod(digits.c_str(), &end);
      if (!digits.empty() && end && *end == 0 && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value::integer(int64_t(d));
      return Value::integer(def);
    }
    default: return Value::integer(def);
  }
}

Value to_float(const Value& v, CallArgs& a) {
  const Value* dv = a.get(0, "default");
  Value def = dv ? *dv : Value::floating(0.0);
  switch (v.kind) {
    case Kind::Int: case Kind::Bool: return Value::floating(double(v.i));
    case Kind::Float: return v;
    case Kind::String: {
      std::string s = py_strip(v.s, nullptr, true, true);
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end && *end == 0) return Value::floating(d);
      return def;
    }
    default: return def;
  }
}

Value indent(Interpreter& in, const Value& v, CallArgs& a) {
  const Value* w = a.get(0, "width");
  std::string pad = w && w->is_string() ? w->s : std::string(size_t(std::clamp<int64_t>(arg_int(a, 0, "width", 4), 0, 1 << 16)), ' ');
  bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
  std::string s = py_str(v) + "\n";
  std::vector<std::string> lines;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      lines.push_back(cur);
      cur.clear();
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      cur += s[i];
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  if (lines.size() * pad.size() > in.limits().max_output_bytes) throw Error("indent result too large");
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + pad : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : pad + lines[i]);
  }
  return Value::string(first ? pad + rv : rv);
}

Value truncate(const Value& v, CallArgs& a) {
  std::vector<std::string> cs = utf8_chars(py_str(v));
  int64_t len = arg_int(a, 0, "length", 255);
  bool killwords = arg_bool(a, 1, "killwords", false);
  std::string end = arg_str(a, 2, "end", "...");
  int64_t leeway = arg_int(a, 3, "leeway", 5);
  if (int64_t(cs.size()) <= len + leeway) return Value::string(py_str(v));
  int64_t keep = std::max<int64_t>(0, len - int64_t(utf8_length(end)));
  std::string head;
  for (int64_t i = 0; i < keep && i < int64_t(cs.size()); ++i) head += cs[size_t(i)];
  if (!killwords) {
    size_t sp = head.rfind(' ');
    if (sp != std::string::npos) head = head.substr(0, sp);
  }
  return Value::string(head + end);
}

Value striptags(const Value& v) {
  std::string s = py_str(v), o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 4, "<!--") == 0) {
      size_t e = s.find("-->", i);
      if (e == std::string::npos) { o += s.substr(i); break; }
      i = e + 2;
    } else if (s[i] == '<') {
      size_t e = s.find('>', i);
      if (e == std::string::npos) { o += s.substr(i); break; }
      i = e;
    } else {
      o += s[i];
    }
  }
  std::string joined;
  for (auto& w : py_split(o, nullptr, -1)) joined += (joined.empty() ? "" : " ") + w;
  const std::pair<const char*, const char*> ents[] = {{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#34;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}};
  for (auto& [e, r] : ents) joined = py_replace(joined, e, r, -1);
  return Value::string(joined);
}

}  // namespace

const std::unordered_map<std::string, FilterFn>& builtin_filters() {
  static const std::unordered_map<std::string, FilterFn> f = {
      {"tojson", tojson},
      {"length", length},
      {"count", length},
      {"trim", [](Interpreter&, const Value& v, CallArgs& a) {
         const Value* c = a.get(0, "chars");
         std::string chars = c && !c->is_none() ? py_str(*c) : std::string();
         return Value::string(py_strip(py_str(v), c && !c->is_none() ? &chars : nullptr, true, true));
       }},
      {"upper", [](Interpreter&, const Value& v, CallArgs&) { return Value::string(py_upper(py_str(v))); }},
      {"lower", [](Interpreter&, const Value& v, CallArgs&) { return Value::string(py_lower(py_str(v))); }},
      {"capitalize", [](Interpreter&, const Value& v, CallArgs&) { return Value::string(py_capitalize(py_str(v))); }},
      {"title", [](Interpreter&, const Value& v, CallArgs&) {
         // jinja2 splits on runs of [-\s({\[<] and capitalises each piece.
         std::string s = py_str(v), o;
         bool start = true;
         for (char c : s) {
           bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || std::isspace((unsigned char)c);
           if (sep) { o += c; start = true; continue; }
           o += start ? char(std::toupper((unsigned char)c)) : char(std::tolower((unsigned char)c));
           if ((unsigned char)c >= 0x80) o.back() = c;
           start = false;
         }
         return Value::string(o);
       }},
      {"string", [](Interpreter&, const Value& v, CallArgs&) { return v.is_string() ? v : Value::string(py_str(v)); }},
      {"safe", [](Interpreter&, const Value& v, CallArgs&) { return v; }},
      {"escape", [](Interpreter&, const Value& v, CallArgs&) { return Value::string(escape_html(py_str(v))); }},
      {"e", [](Interpreter&, const Value& v, CallArgs&) { return Value::string(escape_html(py_str(v))); }},
      {"int", [](Interpreter&, const Value& v, CallArgs& a) { return to_int(v, a); }},
      {"float", [](Interpreter&, const Value& v, CallArgs& a) { return to_float(v, a); }},
      {"abs", [](Interpreter&, const Value& v, CallArgs&) {
         if (v.kind == Kind::Float) return Value::floating(std::fabs(v.f));
         if (v.kind == Kind::Int || v.kind == Kind::Bool) {
           if (v.i == INT64_MIN) throw Error("integer overflow");
           return Value::integer(v.i < 0 ? -v.i : v.i);
         }
         if (v.is_undefined()) undefined_error(v);
         throw Error(cat("bad operand type for abs(): '", type_name(v), "'"));
       }},
      {"round", [](Interpreter&, const Value& v, CallArgs& a) {
         return py_round(v, arg_int(a, 0, "precision", 0), arg_str(a, 1, "method", "common"));
       }},
      {"default", [](Interpreter&, const Value& v, CallArgs& a) {
         const Value* d = a.get(0, "default_value");
         bool boolean = arg_bool(a, 1, "boolean", false);
         if (v.is_undefined() || (boolean && !truthy(v))) return d ? *d : Value::string("");
         return v;
       }},
      {"d", [](Interpreter& in, const Value& v, CallArgs& a) { return in.apply_filter("default", v, a); }},
      {"first", [](Interpreter& in, const Value& v, CallArgs&) {
         List items = in.iterate(v);
         return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
       }},
      {"last", [](Interpreter& in, const Value& v, CallArgs&) {
         List items = in.iterate(v);
         return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
       }},
      {"list", [](Interpreter& in, const Value& v, CallArgs&) { return Value::make_list(in.iterate(v)); }},
      {"items", [](Interpreter&, const Value& v, CallArgs&) {
         if (v.is_undefined()) return Value::make_list();
         if (!v.is_mapping()) throw Error(cat("can only get item pairs from a mapping, not ", type_name(v)));
         List out;
         for (auto& [k, x] : v.dict->items) out.push_back(Value::make_tuple({k, x}));
         return Value::make_list(std::move(out));
       }},
      {"join", [](Interpreter& in, const Value& v, CallArgs& a) {
         std::string sep = arg_str(a, 0, "d", "");
         const Value* attr = a.get(1, "attribute");
         std::string out;
         bool first = true;
         for (const Value& x : in.iterate(v)) {
           out += (first ? "" : sep) + py_str(attr ? get_path(in, x, *attr) : x);
           first = false;
         }
         return Value::string(std::move(out));
       }},
      {"map", [](Interpreter& in, const Value& v, CallArgs& a) {
         List out;
         const Value* attr = nullptr;
         for (auto& [k, x] : a.kw) if (k == "attribute") attr = &x;
         if (attr) {
           const Value* def = nullptr;
           for (auto& [k, x] : a.kw) if (k == "default") def = &x;
           for (const Value& item : in.iterate(v)) {
             Value x = get_path(in, item, *attr);
             out.push_back(x.is_undefined() && def ? *def : x);
           }
           return Value::make_list(std::move(out));
         }
         if (a.pos.empty()) throw Error("map needs a filter name or attribute=");
         std::string filter = py_str(a.pos[0]);
         CallArgs fargs = rest_args(a, 1);
         for (const Value& item : in.iterate(v)) {
           in.step();
           out.push_back(in.apply_filter(filter, item, fargs));
         }
         return Value::make_list(std::move(out));
       }},
      {"select", [](Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, true); }},
      {"reject", [](Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, false); }},
      {"selectattr", [](Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, true); }},
      {"rejectattr", [](Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, false); }},
      {"attr", [](Interpreter& in, const Value& v, CallArgs& a) { return in.get_attr(v, arg_str(a, 0, "name", "")); }},
      {"reverse", [](Interpreter& in, const Value& v, CallArgs&) {
         if (v.is_string()) {
           std::vector<std::string> cs = utf8_chars(v.s);
           std::string o;
           for (size_t i = cs.size(); i-- > 0;) o += cs[i];
           return Value::string(o);
         }
         List items = in.iterate(v);
         std::reverse(items.begin(), items.end());
         return Value::make_list(std::move(items));
       }},
      {"sort", [](Interpreter& in, const Value& v, CallArgs& a) {
         bool reverse = arg_bool(a, 0, "reverse", false), cs = arg_bool(a, 1, "case_sensitive", false);
         const Value* attr = a.get(2, "attribute");
         List items = in.iterate(v);
         auto key = [&](const Value& x) { return sort_key(attr ? get_path(in, x, *attr) : x, cs); };
         std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
           return reverse ? py_less(key(y), key(x)) : py_less(key(x), key(y));
         });
         return Value::make_list(std::move(items));
       }},
      {"dictsort", [](Interpreter&, const Value& v, CallArgs& a) {
         if (!v.is_mapping()) throw Error("dictsort needs a dict");
         bool cs = arg_bool(a, 0, "case_sensitive", false);
         std::string by = arg_str(a, 1, "by", "key");
         bool reverse = arg_bool(a, 2, "reverse", false);
         if (by != "key" && by != "value") throw Error("You can only sort by either \"key\" or \"value\"");
         List items;
         for (auto& [k, x] : v.dict->items) items.push_back(Value::make_tuple({k, x}));
         size_t at = by == "key" ? 0 : 1;
         std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
           Value kx = sort_key((*x.list)[at], cs), ky = sort_key((*y.list)[at], cs);
           return reverse ? py_less(ky, kx) : py_less(kx, ky);
         });
         return Value::make_list(std::move(items));
       }},
      {"unique", [](Interpreter& in, const Value& v, CallArgs& a) {
         bool cs = arg_bool(a, 0, "case_sensitive", false);
         const Value* attr = a.get(1, "attribute");
         List out, seen;
         for (const Value& x : in.iterate(v)) {
           in.step();
           Value k = sort_key(attr ? get_path(in, x, *attr) : x, cs);
           if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { in.step(); return py_equal(s, k); })) {
             seen.push_back(k);
             out.push_back(x);
           }
         }
         return Value::make_list(std::move(out));
       }},
      {"sum", [](Interpreter& in, const Value& v, CallArgs& a) {
         const Value* attr = a.get(0, "attribute");
         const Value* start = a.get(1, "start");
         Value total = start ? *start : Value::integer(0);
         for (const Value& x : in.iterate(v)) {
           Value item = attr ? get_path(in, x, *attr) : x;
           if (!total.is_number() || !item.is_number())
             throw Error(cat("unsupported operand type(s) for +: '", type_name(total), "' and '", type_name(item), "'"));
           if (total.kind == Kind::Float || item.kind == Kind::Float)
             total = Value::floating((total.kind == Kind::Float ? total.f : double(total.i)) + (item.kind == Kind::Float ? item.f : double(item.i)));
           else if (__builtin_add_overflow(total.i, item.i, &total.i)) throw Error("integer overflow");
           else total.kind = Kind::Int;
         }
         return total;
       }},
      {"min", [](Interpreter& in, const Value& v, CallArgs& a) { return min_max(in, v, a, false); }},
      {"max", [](Interpreter& in, const Value& v, CallArgs& a) { return min_max(in, v, a, true); }},
      {"batch", [](Interpreter& in, const Value& v, CallArgs& a) {
         int64_t n = arg_int(a, 0, "linecount", 1);
         if (n <= 0) throw Error("batch size must be positive");
         if (n > in.limits().max_range) throw Error(cat("batch size larger than ", in.limits().max_range));
         const Value* fill = a.get(1, "fill_with");
         List out, cur;
         for (const Value& x : in.iterate(v)) {
           cur.push_back(x);
           if (int64_t(cur.size()) == n) { out.push_back(Value::make_list(std::move(cur))); cur.clear(); }
         }
         if (!cur.empty()) {
           if (fill && !fill->is_none()) while (int64_t(cur.size()) < n) cur.push_back(*fill);
           out.push_back(Value::make_list(std::move(cur)));
         }
         return Value::make_list(std::move(out));
       }},
      {"replace", [](Interpreter&, const Value& v, CallArgs& a) {
         const Value* old = a.get(0, "old");
         const Value* repl = a.get(1, "new");
         if (!old || !repl) throw Error("replace needs old and new");
         return Value::string(py_replace(py_str(v), py_str(*old), py_str(*repl), arg_int(a, 2, "count", -1)));
       }},
      {"indent", [](Interpreter& in, const Value& v, CallArgs& a) { return indent(in, v, a); }},
      {"center", [](Interpreter&, const Value& v, CallArgs& a) {
         std::string s = py_str(v);
         int64_t width = std::min<int64_t>(arg_int(a, 0, "width", 80), 1 << 20);
         int64_t len = int64_t(utf8_length(s));
         if (width <= len) return Value::string(s);
         int64_t marg = width - len, left = marg / 2 + (marg & width & 1);
         return Value::string(std::string(size_t(left), ' ') + s + std::string(size_t(marg - left), ' '));
       }},
      {"wordcount", [](Interpreter&, const Value& v, CallArgs&) {
         std::string s = py_str(v);
         int64_t n = 0;
         bool in_word = false;
         for (unsigned char c : s) {
           bool w = c >= 0x80 || std::isalnum(c) || c == '_';
           if (w && !in_word) ++n;
           in_word = w;
         }
         return Value::integer(n);
       }},
      {"truncate", [](Interpreter&, const Value& v, CallArgs& a) { return truncate(v, a); }},
      {"striptags", [](Interpreter&, const Value& v, CallArgs&) { return striptags(v); }},
      {"format", [](Interpreter&, const Value& v, CallArgs& a) { return Value::string(printf_format(py_str(v), a.pos)); }},
  };
  return f;
}

}  // namespace brisk::text::jinja
