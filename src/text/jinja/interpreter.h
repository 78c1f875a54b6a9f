// Tree-walking interpreter: renders a parsed template against a dict of globals, with
// Jinja2's scoping (for/macro bodies get their own scope; namespace() crosses them), its
// Undefined semantics and the limits of a sandbox (steps, recursion, output size).
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "text/jinja/ast.h"
#include "text/jinja/value.h"

namespace brisk::text::jinja {

struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
  const Value* lookup(const std::string& name) const;
};

struct Limits {
  size_t max_output_bytes = 64u << 20;
  int64_t max_steps = 2'000'000;  // loop iterations + calls: stops runaway templates
  int max_call_depth = 200;        // macro recursion
  int64_t max_range = 100'000;     // as jinja2.sandbox.MAX_RANGE
};

class Interpreter {
 public:
  Interpreter(const Body& body, std::shared_ptr<Frame> globals, Limits limits = {});
  std::string render();

  // Used by filters, tests, methods and globals.
  Value call(const Value& callee, CallArgs& args);
  Value get_attr(const Value& obj, const std::string& name);
  Value get_item(const Value& obj, const Value& key);
  Value apply_filter(const std::string& name, const Value& v, CallArgs& args);
  bool apply_test(const std::string& name, const Value& v, CallArgs& args);
  List iterate(const Value& v);  // Python iteration: list items, dict keys, string chars
  void step();                   // counts work against Limits::max_steps
  const Limits& limits() const { return limits_; }
  // Values that can close reference cycles (namespaces) are cleared when rendering ends.
  void track_namespace(const Value& ns) { namespaces_.push_back(ns.dict); }

 private:
  enum class Flow { Normal, Break, Continue };
  using FrameP = std::shared_ptr<Frame>;

  const Body& body_;
  FrameP globals_;
  Limits limits_;
  int64_t steps_ = 0;
  int call_depth_ = 0;
  // Macros capture their defining frame, which then holds the macro: a shared_ptr cycle.
  // render() clears these frames (and namespaces) at the end to free them.
  std::vector<FrameP> macro_frames_;
  std::vector<std::shared_ptr<Dict>> namespaces_;

  Flow exec_body(const Body& body, const FrameP& frame, std::string& out);
  Flow exec(const Node& n, const FrameP& frame, std::string& out);
  void exec_for(const Node& n, const FrameP& frame, std::string& out);
  void exec_set(const Node& n, const FrameP& frame);
  Value make_macro(const Node& n, const FrameP& frame, const std::string& name);
  void append(std::string& out, const std::string& s);

  Value eval(const Expr& e, const FrameP& frame);
  Value eval_binary(const std::string& op, const Value& a, const Value& b);
  bool eval_compare(const std::string& op, const Value& a, const Value& b);
  CallArgs eval_args(const Expr& e, const FrameP& frame, size_t first);
};

// The Python operations behind Jinja operators, shared with filters.
Value py_slice(const Value& v, const Value& start, const Value& stop, const Value& step);
bool py_contains(const Value& container, const Value& item);
std::string printf_format(const std::string& fmt, const List& args);  // "%s %d" % (a, b)
[[noreturn]] void undefined_error(const Value& v);

}  // namespace brisk::text::jinja
