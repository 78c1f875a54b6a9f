// Statement execution and expression evaluation.
#include "text/jinja/interpreter.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "text/jinja/builtins.h"
#include "text/jinja/strings.h"

namespace brisk::text::jinja {

const Value* Frame::lookup(const std::string& name) const {
  for (const Frame* f = this; f; f = f->parent.get()) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return &it->second;
  }
  return nullptr;
}

[[noreturn]] void undefined_error(const Value& v) {
  if (v.s.empty()) throw Error("value is undefined");
  throw Error(v.s);
}

namespace {
// Undefined values carry the message Jinja2 would raise on use.
Value undefined_name(const std::string& name) { return Value::undefined(cat("'", name, "' is undefined")); }
Value undefined_attr(const Value& obj, const std::string& attr) {
  return Value::undefined(cat("'", type_name(obj), " object' has no attribute '", attr, "'"));
}
int64_t as_int(const Value& v) { return v.i; }
bool intlike(const Value& v) { return v.kind == Kind::Int || v.kind == Kind::Bool; }
double as_num(const Value& v) { return v.kind == Kind::Float ? v.f : double(v.i); }

// Errors from deep inside evaluation get the line of the statement or expression.
[[noreturn]] void rethrow_with_line(const Error& e, int line) {
  std::string msg = e.what();
  if (msg.rfind("line ", 0) == 0) throw e;
  throw Error(cat("line ", line, ": ", msg));
}
}  // namespace

Interpreter::Interpreter(const Body& body, std::shared_ptr<Frame> globals, Limits limits)
    : body_(body), globals_(std::move(globals)), limits_(limits) {}

std::string Interpreter::render() {
  struct BreakCycles {
    Interpreter& in;
    ~BreakCycles() {
      for (auto& f : in.macro_frames_) f->vars.clear();
      for (auto& d : in.namespaces_) d->items.clear();
    }
  } break_cycles{*this};
  std::string out;
  auto top = std::make_shared<Frame>();
  top->parent = globals_;
  exec_body(body_, top, out);
  return out;
}

void Interpreter::step() {
  if (++steps_ > limits_.max_steps)
    throw Error(cat("template ran more than ", limits_.max_steps, " steps (runaway loop?)"));
}

void Interpreter::append(std::string& out, const std::string& s) {
  out += s;
  if (out.size() > limits_.max_output_bytes)
    throw Error(cat("template output exceeds ", limits_.max_output_bytes, " bytes"));
}

Interpreter::Flow Interpreter::exec_body(const Body& body, const FrameP& frame, std::string& out) {
  for (const NodeP& n : body) {
    Flow f = exec(*n, frame, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec(const Node& n, const FrameP& frame, std::string& out) {
  try {
    switch (n.k) {
      case Node::K::Text: append(out, n.text); break;
      case Node::K::Output: append(out, py_str(eval(*n.expr, frame))); break;
      case Node::K::If:
        for (auto& [cond, body] : n.branches)
          if (!cond || truthy(eval(*cond, frame))) return exec_body(body, frame, out);
        break;
      case Node::K::For: exec_for(n, frame, out); break;
      case Node::K::Set: exec_set(n, frame); break;
      case Node::K::SetBlock: {
        std::string captured;
        exec_body(n.body, frame, captured);
        Value v = Value::string(std::move(captured));
        if (n.filter_expr) {
          auto inner = std::make_shared<Frame>();
          inner->parent = frame;
          inner->vars["\x01filter_input"] = v;
          v = eval(*n.filter_expr, inner);
        }
        frame->vars[n.targets[0]] = v;
        break;
      }
      case Node::K::Macro:
        frame->vars[n.text] = make_macro(n, frame, n.text);
        macro_frames_.push_back(frame);
        break;
      case Node::K::CallBlock: {
        const Expr& call = *n.expr;
        CallArgs args = eval_args(call, frame, 1);
        args.kw.emplace_back("caller", make_macro(n, frame, "caller"));
        macro_frames_.push_back(frame);
        append(out, py_str(this->call(eval(*call.args[0], frame), args)));
        break;
      }
      case Node::K::FilterBlock: {
        std::string captured;
        exec_body(n.body, frame, captured);
        auto inner = std::make_shared<Frame>();
        inner->parent = frame;
        inner->vars["\x01filter_input"] = Value::string(std::move(captured));
        append(out, py_str(eval(*n.filter_expr, inner)));
        break;
      }
      case Node::K::Break: return Flow::Break;
      case Node::K::Continue: return Flow::Continue;
      case Node::K::Scope: return exec_body(n.body, frame, out);
    }
  } catch (const Error& e) {
    rethrow_with_line(e, n.line);
  }
  return Flow::Normal;
}

void Interpreter::exec_for(const Node& n, const FrameP& frame, std::string& out) {
  List all = iterate(eval(*n.expr, frame));
  auto scope = std::make_shared<Frame>();
  scope->parent = frame;
  auto bind = [&](const Value& item) {
    if (n.targets.size() == 1) {
      scope->vars[n.targets[0]] = item;
      return;
    }
    List parts = iterate(item);
    if (parts.size() != n.targets.size())
      throw Error(cat("cannot unpack ", parts.size(), " values into ", n.targets.size(), " loop variables"));
    for (size_t i = 0; i < parts.size(); ++i) scope->vars[n.targets[i]] = parts[i];
  };
  List items;
  if (n.cond) {  // `for x in y if cond`: filtered before loop.index and loop.length are known
    for (const Value& item : all) {
      step();
      bind(item);
      if (truthy(eval(*n.cond, scope))) items.push_back(item);
    }
  } else {
    items = std::move(all);
  }
  if (items.empty()) {
    exec_body(n.else_body, frame, out);
    return;
  }
  const int64_t len = int64_t(items.size());
  for (int64_t i = 0; i < len; ++i) {
    step();
    bind(items[size_t(i)]);
    Value loop = Value::make_dict();
    Dict& d = *loop.dict;
    d.set(Value::string("index"), Value::integer(i + 1));
    d.set(Value::string("index0"), Value::integer(i));
    d.set(Value::string("revindex"), Value::integer(len - i));
    d.set(Value::string("revindex0"), Value::integer(len - i - 1));
    d.set(Value::string("first"), Value::boolean(i == 0));
    d.set(Value::string("last"), Value::boolean(i == len - 1));
    d.set(Value::string("length"), Value::integer(len));
    d.set(Value::string("depth"), Value::integer(1));
    d.set(Value::string("depth0"), Value::integer(0));
    d.set(Value::string("previtem"), i > 0 ? items[size_t(i - 1)] : Value::undefined("there is no previous item"));
    d.set(Value::string("nextitem"), i + 1 < len ? items[size_t(i + 1)] : Value::undefined("there is no next item"));
    d.set(Value::string("cycle"), Value::callable("cycle", [i](Interpreter&, CallArgs& a) -> Value {
            if (a.pos.empty()) throw Error("no items for cycling given");
            return a.pos[size_t(i) % a.pos.size()];
          }));
    scope->vars["loop"] = loop;
    if (exec_body(n.body, scope, out) == Flow::Break) break;
  }
}

void Interpreter::exec_set(const Node& n, const FrameP& frame) {
  Value v = eval(*n.expr, frame);
  if (!n.target_attr.empty()) {
    const Value* ns = frame->lookup(n.targets[0]);
    if (!ns || ns->kind != Kind::Namespace)
      throw Error(cat("cannot assign attribute on non-namespace object '", n.targets[0], "'"));
    ns->dict->set(Value::string(n.target_attr), std::move(v));
    return;
  }
  if (n.targets.size() == 1) {
    frame->vars[n.targets[0]] = std::move(v);
    return;
  }
  List parts = iterate(v);
  if (parts.size() != n.targets.size())
    throw Error(cat("cannot unpack ", parts.size(), " values into ", n.targets.size(), " names"));
  for (size_t i = 0; i < parts.size(); ++i) frame->vars[n.targets[i]] = parts[i];
}

Value Interpreter::make_macro(const Node& n, const FrameP& closure, const std::string& name) {
  const Node* node = &n;
  return Value::callable(name, [node, closure, name](Interpreter& in, CallArgs& args) -> Value {
    in.step();
    if (++in.call_depth_ > in.limits_.max_call_depth) {
      --in.call_depth_;
      throw Error(cat("macro recursion deeper than ", in.limits_.max_call_depth, " calls"));
    }
    struct Unwind { int& d; ~Unwind() { --d; } } unwind{in.call_depth_};
    auto scope = std::make_shared<Frame>();
    scope->parent = closure;
    const auto& params = node->params;
    if (args.pos.size() > params.size())
      throw Error(cat("macro '", name, "' takes not more than ", params.size(), " argument(s)"));
    std::vector<bool> bound(params.size(), false);
    for (size_t i = 0; i < args.pos.size(); ++i) {
      scope->vars[params[i].name] = args.pos[i];
      bound[i] = true;
    }
    for (auto& [k, v] : args.kw) {
      size_t idx = params.size();
      for (size_t i = 0; i < params.size(); ++i)
        if (params[i].name == k) idx = i;
      if (idx == params.size()) {
        if (k == "caller") { scope->vars["caller"] = v; continue; }
        throw Error(cat("macro '", name, "' takes no keyword argument '", k, "'"));
      }
      scope->vars[k] = v;
      bound[idx] = true;
    }
    for (size_t i = 0; i < params.size(); ++i)
      if (!bound[i])
        scope->vars[params[i].name] = params[i].default_value ? in.eval(*params[i].default_value, scope)
                                                             : Value::undefined(cat("parameter '", params[i].name,
                                                                                    "' was not provided"));
    std::string out;
    in.exec_body(node->body, scope, out);
    return Value::string(std::move(out));
  });
}

List Interpreter::iterate(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return {};
    case Kind::List: case Kind::Tuple: return *v.list;
    case Kind::Dict: {
      List keys;
      for (auto& kv : v.dict->items) keys.push_back(kv.first);
      return keys;
    }
    case Kind::String: {
      List chars;
      for (auto& c : utf8_chars(v.s)) chars.push_back(Value::string(c));
      return chars;
    }
    default: throw Error(cat("'", type_name(v), "' object is not iterable"));
  }
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) undefined_error(callee);
  if (callee.kind != Kind::Callable) throw Error(cat("'", type_name(callee), "' object is not callable"));
  return callee.fn->fn(*this, args);
}

Value Interpreter::get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Kind::Undefined: undefined_error(obj);
    case Kind::Namespace: {
      const Value* v = obj.dict->find(name);
      return v ? *v : undefined_attr(obj, name);
    }
    case Kind::Dict: {
      Value m = bound_method(obj, name);  // Python getattr first: d.items is the method
      if (!m.is_undefined() || !m.s.empty()) return m;
      const Value* v = obj.dict->find(name);
      return v ? *v : undefined_attr(obj, name);
    }
    default: {
      Value m = bound_method(obj, name);  // an undefined with a message: an unsafe (mutating) method
      return m.is_undefined() && m.s.empty() ? undefined_attr(obj, name) : m;
    }
  }
}

Value Interpreter::get_item(const Value& obj, const Value& key) {
  switch (obj.kind) {
    case Kind::Undefined: undefined_error(obj);
    case Kind::Dict: {
      if (const Value* v = obj.dict->find(key)) return *v;
      break;
    }
    case Kind::List: case Kind::Tuple: case Kind::String:
      if (intlike(key)) {
        int64_t n = obj.kind == Kind::String ? int64_t(utf8_length(obj.s)) : int64_t(obj.list->size());
        int64_t i = key.i < 0 ? key.i + n : key.i;
        if (i < 0 || i >= n) return Value::undefined(cat(type_name(obj), " index out of range"));
        if (obj.kind == Kind::String) return Value::string(utf8_chars(obj.s)[size_t(i)]);
        return (*obj.list)[size_t(i)];
      }
      break;
    default: break;
  }
  if (key.is_string()) return get_attr(obj, key.s);  // as jinja2's getitem falls back to getattr
  return Value::undefined(cat("'", type_name(obj), " object' has no item ", py_repr(key)));
}

Value Interpreter::apply_filter(const std::string& name, const Value& v, CallArgs& args) {
  auto& f = builtin_filters();
  auto it = f.find(name);
  if (it == f.end()) throw Error(cat("no filter named '", name, "'"));
  return it->second(*this, v, args);
}

bool Interpreter::apply_test(const std::string& name, const Value& v, CallArgs& args) {
  auto& t = builtin_tests();
  auto it = t.find(name);
  if (it == t.end()) throw Error(cat("no test named '", name, "'"));
  return it->second(*this, v, args);
}

CallArgs Interpreter::eval_args(const Expr& e, const FrameP& frame, size_t first) {
  CallArgs a;
  for (size_t i = first; i < e.args.size(); ++i) a.pos.push_back(eval(*e.args[i], frame));
  for (auto& [k, x] : e.kwargs) a.kw.emplace_back(k, eval(*x, frame));
  return a;
}

Value Interpreter::eval(const Expr& e, const FrameP& frame) {
  try {
    switch (e.k) {
      case Expr::K::Literal: return e.lit;
      case Expr::K::Name: {
        const Value* v = frame->lookup(e.name);
        return v ? *v : undefined_name(e.name);
      }
      case Expr::K::List: case Expr::K::Tuple: {
        List items;
        for (auto& x : e.args) items.push_back(eval(*x, frame));
        return e.k == Expr::K::List ? Value::make_list(std::move(items)) : Value::make_tuple(std::move(items));
      }
      case Expr::K::Dict: {
        Value d = Value::make_dict();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Value k = eval(*e.args[i], frame);
          if (k.kind == Kind::List || k.kind == Kind::Dict || k.kind == Kind::Undefined)
            throw Error(cat("unhashable type: '", type_name(k), "'"));
          d.dict->set(k, eval(*e.args[i + 1], frame));
        }
        return d;
      }
      case Expr::K::Attr: return get_attr(eval(*e.args[0], frame), e.name);
      case Expr::K::Item: return get_item(eval(*e.args[0], frame), eval(*e.args[1], frame));
      case Expr::K::Slice: {
        Value obj = eval(*e.args[0], frame);
        auto part = [&](size_t i) { return e.args[i] ? eval(*e.args[i], frame) : Value::none(); };
        return py_slice(obj, part(1), part(2), part(3));
      }
      case Expr::K::Call: {
        Value callee = eval(*e.args[0], frame);
        CallArgs a = eval_args(e, frame, 1);
        return call(callee, a);
      }
      case Expr::K::Filter: {
        Value subject;
        if (e.args[0]) subject = eval(*e.args[0], frame);
        else subject = *frame->lookup("\x01filter_input");
        CallArgs a = eval_args(e, frame, 1);
        return apply_filter(e.name, subject, a);
      }
      case Expr::K::Test: {
        Value subject = eval(*e.args[0], frame);
        CallArgs a = eval_args(e, frame, 1);
        return Value::boolean(apply_test(e.name, subject, a) != e.negated);
      }
      case Expr::K::Not: return Value::boolean(!truthy(eval(*e.args[0], frame)));
      case Expr::K::Neg: case Expr::K::Pos: {
        Value v = eval(*e.args[0], frame);
        if (v.is_undefined()) undefined_error(v);
        if (!v.is_number()) throw Error(cat("bad operand type for unary ", e.k == Expr::K::Neg ? "-" : "+", ": '", type_name(v), "'"));
        if (e.k == Expr::K::Pos) return v.kind == Kind::Bool ? Value::integer(v.i) : v;
        if (v.kind == Kind::Float) return Value::floating(-v.f);
        if (v.i == INT64_MIN) throw Error("integer overflow");
        return Value::integer(-v.i);
      }
      case Expr::K::Binary: return eval_binary(e.name, eval(*e.args[0], frame), eval(*e.args[1], frame));
      case Expr::K::And: {
        Value l = eval(*e.args[0], frame);
        return truthy(l) ? eval(*e.args[1], frame) : l;
      }
      case Expr::K::Or: {
        Value l = eval(*e.args[0], frame);
        return truthy(l) ? l : eval(*e.args[1], frame);
      }
      case Expr::K::Compare: {
        Value l = eval(*e.args[0], frame);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value r = eval(*e.args[i + 1], frame);
          if (!eval_compare(e.ops[i], l, r)) return Value::boolean(false);
          l = std::move(r);
        }
        return Value::boolean(true);
      }
      case Expr::K::Cond:
        if (truthy(eval(*e.args[0], frame))) return eval(*e.args[1], frame);
        return e.args[2] ? eval(*e.args[2], frame) : Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
  } catch (const Error& err) {
    rethrow_with_line(err, e.line);
  }
  return Value::undefined();
}

bool Interpreter::eval_compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return py_equal(a, b);
  if (op == "!=") return !py_equal(a, b);
  if (op == "in") return py_contains(b, a);
  if (op == "notin") return !py_contains(b, a);
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (op == "<") return py_less(a, b);
  if (op == ">") return py_less(b, a);
  if (op == "<=") return !py_less(b, a);
  return !py_less(a, b);  // >=
}

Value Interpreter::eval_binary(const std::string& op, const Value& a, const Value& b) {
  auto check_size = [](size_t n) {
    if (n > kMaxStringBytes) throw Error(cat("value larger than ", kMaxStringBytes, " bytes"));
  };
  if (op == "~") {
    std::string sa = py_str(a), sb = py_str(b);
    check_size(sa.size() + sb.size());
    return Value::string(sa + sb);
  }
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  auto unsupported = [&]() -> Error {
    return Error(cat("unsupported operand type(s) for ", op, ": '", type_name(a), "' and '", type_name(b), "'"));
  };
  if (a.is_number() && b.is_number()) {
    bool ints = intlike(a) && intlike(b);
    int64_t x = as_int(a), y = as_int(b), r = 0;
    double fx = as_num(a), fy = as_num(b);
    if (op == "+") { if (ints) { if (__builtin_add_overflow(x, y, &r)) throw Error("integer overflow"); return Value::integer(r); } return Value::floating(fx + fy); }
    if (op == "-") { if (ints) { if (__builtin_sub_overflow(x, y, &r)) throw Error("integer overflow"); return Value::integer(r); } return Value::floating(fx - fy); }
    if (op == "*") { if (ints) { if (__builtin_mul_overflow(x, y, &r)) throw Error("integer overflow"); return Value::integer(r); } return Value::floating(fx * fy); }
    if (op == "/") {
      if (fy == 0) throw Error("division by zero");
      return Value::floating(fx / fy);
    }
    if (op == "//" || op == "%") {
      if (ints) {
        if (y == 0) throw Error("integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) throw Error("integer overflow");
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) { --q; m += y; }
        return Value::integer(op == "//" ? q : m);
      }
      if (fy == 0) throw Error("float division by zero");
      double m = std::fmod(fx, fy);
      if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
      return Value::floating(op == "//" ? std::floor(fx / fy) : m);
    }
    if (op == "**") {
      if (ints && y >= 0) {
        int64_t result = 1, base = x;
        for (int64_t e = y; e > 0; e >>= 1) {
          if (e & 1) if (__builtin_mul_overflow(result, base, &result)) throw Error("integer overflow");
          if (e > 1 && __builtin_mul_overflow(base, base, &base)) throw Error("integer overflow");
        }
        return Value::integer(result);
      }
      if (fx == 0 && fy < 0) throw Error("0.0 cannot be raised to a negative power");
      return Value::floating(std::pow(fx, fy));
    }
    throw unsupported();
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      check_size(a.s.size() + b.s.size());
      return Value::string(a.s + b.s);
    }
    if (a.is_sequence() && a.kind == b.kind) {
      check_size((a.list->size() + b.list->size()) * sizeof(Value));
      List items = *a.list;
      items.insert(items.end(), b.list->begin(), b.list->end());
      return a.kind == Kind::List ? Value::make_list(std::move(items)) : Value::make_tuple(std::move(items));
    }
    if (a.is_string()) throw Error(cat("can only concatenate str (not \"", type_name(b), "\") to str"));
    throw unsupported();
  }
  if (op == "*") {
    const Value* seq = intlike(b) ? &a : intlike(a) ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq && (seq->is_string() || seq->is_sequence())) {
      int64_t n = std::max<int64_t>(0, count->i);
      size_t unit = seq->is_string() ? seq->s.size() : seq->list->size();
      if (unit && uint64_t(n) * unit > limits_.max_output_bytes) throw Error("repetition result too large");
      if (seq->is_string()) {
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq->s;
        return Value::string(std::move(out));
      }
      List items;
      for (int64_t i = 0; i < n; ++i) items.insert(items.end(), seq->list->begin(), seq->list->end());
      return seq->kind == Kind::List ? Value::make_list(std::move(items)) : Value::make_tuple(std::move(items));
    }
  }
  if (op == "%" && a.is_string()) return Value::string(printf_format(a.s, b.kind == Kind::Tuple ? *b.list : List{b}));
  throw unsupported();
}

bool py_contains(const Value& c, const Value& item) {
  switch (c.kind) {
    case Kind::Undefined: return false;
    case Kind::String:
      if (!item.is_string()) throw Error(cat("'in <string>' requires string as left operand, not ", type_name(item)));
      return c.s.find(item.s) != std::string::npos;
    case Kind::List: case Kind::Tuple:
      for (auto& x : *c.list)
        if (py_equal(x, item)) return true;
      return false;
    case Kind::Dict: return c.dict->find(item) != nullptr;
    case Kind::Namespace: return c.dict->find(item) != nullptr;
    default: throw Error(cat("argument of type '", type_name(c), "' is not iterable"));
  }
}

Value py_slice(const Value& v, const Value& start, const Value& stop, const Value& step) {
  if (v.is_undefined()) undefined_error(v);
  std::vector<std::string> chars;
  int64_t n;
  if (v.is_string()) { chars = utf8_chars(v.s); n = int64_t(chars.size()); }
  else if (v.is_sequence()) n = int64_t(v.list->size());
  else throw Error(cat("'", type_name(v), "' object is not subscriptable"));
  auto idx = [](const Value& x, const char* what) -> const Value* {
    if (x.is_none()) return nullptr;
    if (x.kind != Kind::Int && x.kind != Kind::Bool) throw Error(cat("slice ", what, " must be an integer or None"));
    return &x;
  };
  const Value* st = idx(step, "step");
  int64_t s = st ? st->i : 1;
  if (s == 0) throw Error("slice step cannot be zero");
  auto clamp = [&](const Value* x, int64_t def) {
    if (!x) return def;
    int64_t i = x->i;
    if (i < 0) i += n;
    if (s > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  int64_t b = clamp(idx(start, "start"), s > 0 ? 0 : n - 1);
  int64_t e = clamp(idx(stop, "stop"), s > 0 ? n : -1);
  std::vector<int64_t> picks;
  for (int64_t i = b; s > 0 ? i < e : i > e; i += s) picks.push_back(i);
  if (v.is_string()) {
    std::string out;
    for (int64_t i : picks) out += chars[size_t(i)];
    return Value::string(std::move(out));
  }
  List items;
  for (int64_t i : picks) items.push_back((*v.list)[size_t(i)]);
  return v.kind == Kind::List ? Value::make_list(std::move(items)) : Value::make_tuple(std::move(items));
}

std::string printf_format(const std::string& fmt, const List& args) {
  std::string out;
  size_t next = 0;
  auto take = [&]() -> const Value& {
    if (next >= args.size()) throw Error("not enough arguments for format string");
    return args[next++];
  };
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') { out += fmt[i]; continue; }
    if (++i >= fmt.size()) throw Error("incomplete format");
    std::string spec = "%";
    while (i < fmt.size() && fmt[i] && std::strchr("-+ #0123456789.", fmt[i])) spec += fmt[i++];
    if (i >= fmt.size()) throw Error("incomplete format");
    char c = fmt[i];
    char buf[512];
    if (c == '%') out += '%';
    else if (c == 's') out += py_str(take());
    else if (c == 'r') out += py_repr(take());
    else if (c == 'd' || c == 'i') {
      const Value& v = take();
      if (!v.is_number()) throw Error(cat("%d format: a real number is required, not ", type_name(v)));
      std::snprintf(buf, sizeof buf, (spec + "lld").c_str(), (long long)(v.kind == Kind::Float ? int64_t(v.f) : v.i));
      out += buf;
    } else if (c == 'f' || c == 'e' || c == 'g' || c == 'F' || c == 'E' || c == 'G') {
      const Value& v = take();
      if (!v.is_number()) throw Error(cat("must be real number, not ", type_name(v)));
      std::snprintf(buf, sizeof buf, (spec + c).c_str(), as_num(v));
      out += buf;
    } else {
      throw Error(cat("unsupported format character '", c, "'"));
    }
  }
  if (next < args.size()) throw Error("not all arguments converted during string formatting");
  return out;
}

}  // namespace brisk::text::jinja
