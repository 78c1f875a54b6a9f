// Syntax tree of a Jinja template: expressions and statements, each with its template line.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/value.h"

namespace brisk::text::jinja {

struct Expr;
using ExprP = std::unique_ptr<Expr>;

struct Expr {
  enum class K {
    Literal,  // lit
    Name,     // name
    List, Tuple, Dict,  // args (Dict: key, value, key, value, ...)
    Attr,     // args[0].name
    Item,     // args[0][args[1]]
    Slice,    // args[0][args[1]:args[2]:args[3]] (null parts allowed)
    Call,     // args[0](args[1:], kwargs)
    Filter,   // name: args[0]|name(args[1:], kwargs); args[0] null inside {% filter %}
    Test,     // name: args[0] is [not] name(args[1:])
    Not, Neg, Pos,   // args[0]
    Binary,   // name is the operator: + - * / // % ** ~
    And, Or,  // args[0], args[1]
    Compare,  // args[0] ops[0] args[1] ops[1] args[2] ... (== != < > <= >= in notin)
    Cond,     // args[1] if args[0] else args[2] (args[2] may be null: undefined)
  };
  K k;
  int line = 0;
  Value lit;
  std::string name;
  std::vector<ExprP> args;
  std::vector<std::pair<std::string, ExprP>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

struct Node;
using NodeP = std::unique_ptr<Node>;
using Body = std::vector<NodeP>;

struct MacroParam {
  std::string name;
  ExprP default_value;  // may be null
};

struct Node {
  enum class K {
    Text,         // text
    Output,       // {{ expr }}
    If,           // branches: (cond or null for else, body)
    For,          // targets in expr [if cond] body [else else_body]
    Set,          // targets (or target_ns.target_attr) = expr
    SetBlock,     // {% set targets[0] [| filter] %}body{% endset %}; filter in filter_expr
    Macro,        // name(params) body
    CallBlock,    // {% call(params) expr %}body{% endcall %}
    FilterBlock,  // {% filter filter_expr %}body{% endfilter %}
    Break, Continue,
    Scope,        // a body without its own scope semantics ({% generation %})
  };
  K k;
  int line = 0;
  std::string text;
  ExprP expr;
  ExprP cond;
  ExprP filter_expr;
  std::vector<std::string> targets;
  std::string target_attr;  // Set on a namespace attribute: targets[0].target_attr
  std::vector<std::pair<ExprP, Body>> branches;
  Body body, else_body;
  std::vector<MacroParam> params;
};

}  // namespace brisk::text::jinja
