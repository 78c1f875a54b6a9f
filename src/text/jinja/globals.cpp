// Globals: Jinja2's range/dict/namespace and transformers' raise_exception/strftime_now.
#include <ctime>

#include "core/error.h"
#include "text/jinja/builtins.h"

namespace brisk::text::jinja {

void add_builtin_globals(Frame& g) {
  g.vars["range"] = Value::callable("range", [](Interpreter& in, CallArgs& a) -> Value {
    for (auto& v : a.pos)
      if (v.kind != Kind::Int && v.kind != Kind::Bool) throw Error(cat("range() arguments must be integers, not ", type_name(v)));
    if (a.pos.empty() || a.pos.size() > 3) throw Error("range expected 1 to 3 arguments");
    int64_t start = a.pos.size() == 1 ? 0 : a.pos[0].i;
    int64_t stop = a.pos.size() == 1 ? a.pos[0].i : a.pos[1].i;
    int64_t step = a.pos.size() == 3 ? a.pos[2].i : 1;
    if (step == 0) throw Error("range() arg 3 must not be zero");
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (int64_t(out.size()) >= in.limits().max_range)
        throw Error(cat("range too big: more than ", in.limits().max_range, " items"));
      out.push_back(Value::integer(i));
      if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
    }
    return Value::make_list(std::move(out));
  });
  g.vars["dict"] = Value::callable("dict", [](Interpreter& in, CallArgs& a) -> Value {
    Value d = Value::make_dict();
    if (!a.pos.empty()) {
      const Value& src = a.pos[0];
      if (src.is_mapping()) d.dict->items = src.dict->items;
      else
        for (const Value& pair : in.iterate(src)) {
          List kv = in.iterate(pair);
          if (kv.size() != 2) throw Error("dictionary update sequence element has wrong length");
          d.dict->set(kv[0], kv[1]);
        }
    }
    for (auto& [k, v] : a.kw) d.dict->set(Value::string(k), v);
    return d;
  });
  g.vars["namespace"] = Value::callable("namespace", [](Interpreter& in, CallArgs& a) -> Value {
    Value ns = Value::make_namespace();
    in.track_namespace(ns);
    for (auto& v : a.pos) {
      if (!v.is_mapping()) throw Error("namespace() positional argument must be a dict");
      for (auto& [k, x] : v.dict->items) ns.dict->set(k, x);
    }
    for (auto& [k, v] : a.kw) ns.dict->set(Value::string(k), v);
    return ns;
  });
  g.vars["raise_exception"] = Value::callable("raise_exception", [](Interpreter&, CallArgs& a) -> Value {
    throw Error(a.pos.empty() ? std::string("raise_exception called") : py_str(a.pos[0]));
  });
  g.vars["strftime_now"] = Value::callable("strftime_now", [](Interpreter&, CallArgs& a) -> Value {
    if (a.pos.empty() || !a.pos[0].is_string()) throw Error("strftime_now(format) needs a format string");
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[512];
    size_t n = std::strftime(buf, sizeof buf, a.pos[0].s.c_str(), &tm);
    return Value::string(std::string(buf, n));
  });
}

}  // namespace brisk::text::jinja
