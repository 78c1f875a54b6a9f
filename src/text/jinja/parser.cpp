// Recursive-descent parser following jinja2.parser: condexpr > or > and > not > compare >
// + - > ~ > * / // % > ** > unary > primary, postfix (. [] ()), then filters (|) and tests (is).
#include "text/jinja/parser.h"

#include <set>

#include "core/error.h"

namespace brisk::text::jinja {
namespace {

constexpr int kMaxDepth = 200;  // nesting limit: deep input must fail cleanly, not overflow the stack

class Parser {
 public:
  Parser(std::vector<Token> toks, const KnownNames& names) : t_(std::move(toks)), names_(names) {}

  Body parse_template() {
    Body body = parse_body({});
    if (cur().type != Tok::Eof) fail(cur().line, "unexpected tag");
    return body;
  }

 private:
  std::vector<Token> t_;
  const KnownNames& names_;
  size_t p_ = 0;
  int depth_ = 0;

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth) p.fail(p.cur().line, "template nesting too deep");
    }
    ~DepthGuard() { --p.depth_; }
  };

  const Token& cur() const { return t_[p_]; }
  const Token& peek(size_t n = 1) const { return t_[std::min(p_ + n, t_.size() - 1)]; }
  [[noreturn]] void fail(int line, const std::string& msg) const { throw Error(cat("line ", line, ": ", msg)); }
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  bool accept_op(const char* op) { if (is_op(op)) { ++p_; return true; } return false; }
  bool accept_name(const char* n) { if (is_name(n)) { ++p_; return true; } return false; }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Eof: return "end of template";
      case Tok::BlockEnd: return "end of statement block";
      case Tok::VarEnd: return "end of print statement";
      case Tok::Text: return "template data";
      default: return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) fail(cur().line, cat("expected '", op, "', got ", describe(cur())));
  }
  std::string expect_name() {
    if (cur().type != Tok::Name) fail(cur().line, cat("expected a name, got ", describe(cur())));
    return t_[p_++].text;
  }
  void expect(Tok type, const char* what) {
    if (cur().type != type) fail(cur().line, cat("expected ", what, ", got ", describe(cur())));
    ++p_;
  }

  static ExprP make(Expr::K k, int line) {
    auto e = std::make_unique<Expr>();
    e->k = k;
    e->line = line;
    return e;
  }

  // ---- statements ----
  // Parses nodes until `{% <one of end_tags> ...` (left unconsumed) or end of input.
  Body parse_body(const std::set<std::string>& end_tags) {
    DepthGuard guard(*this);
    Body body;
    while (cur().type != Tok::Eof) {
      const Token& t = cur();
      if (t.type == Tok::Text) {
        auto n = std::make_unique<Node>();
        n->k = Node::K::Text;
        n->line = t.line;
        n->text = t.text;
        body.push_back(std::move(n));
        ++p_;
      } else if (t.type == Tok::VarBegin) {
        auto n = std::make_unique<Node>();
        n->k = Node::K::Output;
        n->line = t.line;
        ++p_;
        n->expr = parse_tuple_expr();
        expect(Tok::VarEnd, "'}}'");
        body.push_back(std::move(n));
      } else if (t.type == Tok::BlockBegin) {
        if (peek().type == Tok::Name && end_tags.count(peek().text)) return body;
        ++p_;
        body.push_back(parse_statement());
      } else {
        fail(t.line, cat("unexpected ", describe(t)));
      }
    }
    if (!end_tags.empty()) {
      std::string list;
      for (auto& e : end_tags) list += (list.empty() ? "'" : " or '") + e + "'";
      fail(cur().line, cat("unexpected end of template, expected ", list));
    }
    return body;
  }

  // Consumes `{% name` ... expecting the tag to be one of `names`; returns the name.
  std::string open_tag(const std::set<std::string>& names) {
    expect(Tok::BlockBegin, "'{%'");
    std::string n = expect_name();
    if (!names.count(n)) fail(t_[p_ - 1].line, cat("unexpected tag '", n, "'"));
    return n;
  }

  NodeP parse_statement() {
    const Token& t = cur();
    if (t.type != Tok::Name) fail(t.line, "expected a tag name after '{%'");
    std::string tag = t.text;
    int line = t.line;
    ++p_;
    auto n = std::make_unique<Node>();
    n->line = line;
    if (tag == "if") {
      n->k = Node::K::If;
      ExprP cond = parse_expr();
      while (true) {
        expect(Tok::BlockEnd, "'%}'");
        Body b = parse_body({"elif", "else", "endif"});
        n->branches.emplace_back(std::move(cond), std::move(b));
        std::string next = open_tag({"elif", "else", "endif"});
        if (next == "endif") break;
        if (next == "else") {
          expect(Tok::BlockEnd, "'%}'");
          n->branches.emplace_back(nullptr, parse_body({"endif"}));
          open_tag({"endif"});
          break;
        }
        cond = parse_expr();
      }
    } else if (tag == "for") {
      n->k = Node::K::For;
      n->targets = parse_targets();
      if (!accept_name("in")) fail(cur().line, cat("expected 'in' in for loop, got ", describe(cur())));
      n->expr = parse_tuple_expr(/*with_cond=*/false);
      if (accept_name("recursive")) fail(line, "recursive for loops are not supported");
      if (accept_name("if")) n->cond = parse_expr();
      expect(Tok::BlockEnd, "'%}'");
      n->body = parse_body({"endfor", "else"});
      if (open_tag({"endfor", "else"}) == "else") {
        expect(Tok::BlockEnd, "'%}'");
        n->else_body = parse_body({"endfor"});
        open_tag({"endfor"});
      }
    } else if (tag == "set") {
      std::string first = expect_name();
      if (accept_op(".")) {
        n->target_attr = expect_name();
        n->targets = {first};
      } else {
        n->targets = {first};
        while (accept_op(",")) n->targets.push_back(expect_name());
      }
      if (accept_op("=")) {
        n->k = Node::K::Set;
        n->expr = parse_tuple_expr();
      } else {
        if (n->targets.size() != 1 || !n->target_attr.empty()) fail(line, "block set needs a single plain name");
        n->k = Node::K::SetBlock;
        if (is_op("|")) n->filter_expr = parse_filter_chain(nullptr);
        expect(Tok::BlockEnd, "'%}'");
        n->body = parse_body({"endset"});
        open_tag({"endset"});
      }
    } else if (tag == "macro") {
      n->k = Node::K::Macro;
      n->text = expect_name();
      n->params = parse_params();
      expect(Tok::BlockEnd, "'%}'");
      n->body = parse_body({"endmacro"});
      open_tag({"endmacro"});
      if (cur().type == Tok::Name) ++p_;  // {% endmacro name %}
    } else if (tag == "call") {
      n->k = Node::K::CallBlock;
      if (is_op("(")) n->params = parse_params();
      n->expr = parse_expr();
      if (n->expr->k != Expr::K::Call) fail(line, "expected a call after 'call'");
      expect(Tok::BlockEnd, "'%}'");
      n->body = parse_body({"endcall"});
      open_tag({"endcall"});
    } else if (tag == "filter") {
      n->k = Node::K::FilterBlock;
      n->filter_expr = parse_filter_chain(parse_filter(nullptr, line));
      expect(Tok::BlockEnd, "'%}'");
      n->body = parse_body({"endfilter"});
      open_tag({"endfilter"});
    } else if (tag == "generation") {  // transformers' AssistantTracker tag: renders its body
      n->k = Node::K::Scope;
      expect(Tok::BlockEnd, "'%}'");
      n->body = parse_body({"endgeneration"});
      open_tag({"endgeneration"});
    } else if (tag == "break" || tag == "continue") {
      n->k = tag == "break" ? Node::K::Break : Node::K::Continue;
    } else {
      fail(line, cat("unknown tag '", tag, "'"));
    }
    expect(Tok::BlockEnd, "'%}'");
    return n;
  }

  std::vector<std::string> parse_targets() {
    bool paren = accept_op("(");
    std::vector<std::string> names{expect_name()};
    while (accept_op(",")) {
      if (cur().type != Tok::Name || is_name("in")) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  std::vector<MacroParam> parse_params() {
    std::vector<MacroParam> params;
    expect_op("(");
    while (!accept_op(")")) {
      if (!params.empty()) expect_op(",");
      if (accept_op(")")) break;
      MacroParam mp;
      mp.name = expect_name();
      if (accept_op("=")) mp.default_value = parse_expr();
      params.push_back(std::move(mp));
    }
    return params;
  }

  // ---- expressions ----
  ExprP parse_tuple_expr(bool with_cond = true) {
    int line = cur().line;
    ExprP first = parse_expr(with_cond);
    if (!is_op(",")) return first;
    auto tup = make(Expr::K::Tuple, line);
    tup->args.push_back(std::move(first));
    while (accept_op(",")) {
      if (cur().type == Tok::BlockEnd || cur().type == Tok::VarEnd || is_name("if")) break;
      tup->args.push_back(parse_expr(with_cond));
    }
    return tup;
  }

  ExprP parse_expr(bool with_cond = true) {
    DepthGuard guard(*this);
    ExprP e = parse_or();
    if (!with_cond) return e;
    while (is_name("if")) {
      int line = cur().line;
      ++p_;
      auto c = make(Expr::K::Cond, line);
      c->args.push_back(parse_or());
      c->args.push_back(std::move(e));
      c->args.push_back(accept_name("else") ? parse_expr() : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprP binary(Expr::K k, ExprP l, ExprP r, int line, std::string op = {}) {
    auto e = make(k, line);
    e->name = std::move(op);
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }

  ExprP parse_or() {
    ExprP l = parse_and();
    while (is_name("or")) { int line = cur().line; ++p_; l = binary(Expr::K::Or, std::move(l), parse_and(), line); }
    return l;
  }
  ExprP parse_and() {
    ExprP l = parse_not();
    while (is_name("and")) { int line = cur().line; ++p_; l = binary(Expr::K::And, std::move(l), parse_not(), line); }
    return l;
  }
  ExprP parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto e = make(Expr::K::Not, cur().line);
      ++p_;
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprP parse_compare() {
    int line = cur().line;
    ExprP l = parse_math1();
    ExprP cmp;
    while (true) {
      std::string op;
      if (cur().type == Tok::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                    cur().text == ">" || cur().text == "<=" || cur().text == ">=")) {
        op = cur().text;
        ++p_;
      } else if (is_name("in")) {
        op = "in";
        ++p_;
      } else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
        op = "notin";
        p_ += 2;
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(Expr::K::Compare, line);
        cmp->args.push_back(std::move(l));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(l);
  }
  ExprP parse_math1() {
    ExprP l = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text; int line = cur().line; ++p_;
      l = binary(Expr::K::Binary, std::move(l), parse_concat(), line, op);
    }
    return l;
  }
  ExprP parse_concat() {
    ExprP l = parse_math2();
    while (is_op("~")) { int line = cur().line; ++p_; l = binary(Expr::K::Binary, std::move(l), parse_math2(), line, "~"); }
    return l;
  }
  ExprP parse_math2() {
    ExprP l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text; int line = cur().line; ++p_;
      l = binary(Expr::K::Binary, std::move(l), parse_pow(), line, op);
    }
    return l;
  }
  ExprP parse_pow() {
    ExprP l = parse_unary(true);
    while (is_op("**")) { int line = cur().line; ++p_; l = binary(Expr::K::Binary, std::move(l), parse_unary(true), line, "**"); }
    return l;
  }
  ExprP parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprP node;
    if (is_op("-") || is_op("+")) {
      node = make(is_op("-") ? Expr::K::Neg : Expr::K::Pos, cur().line);
      ++p_;
      node->args.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprP parse_primary() {
    const Token& t = cur();
    int line = t.line;
    switch (t.type) {
      case Tok::Name: {
        ++p_;
        auto e = make(Expr::K::Literal, line);
        if (t.text == "true" || t.text == "True") e->lit = Value::boolean(true);
        else if (t.text == "false" || t.text == "False") e->lit = Value::boolean(false);
        else if (t.text == "none" || t.text == "None") e->lit = Value::none();
        else { e->k = Expr::K::Name; e->name = t.text; }
        return e;
      }
      case Tok::String: {
        std::string s;
        while (cur().type == Tok::String) s += t_[p_++].text;  // adjacent literals concatenate
        auto e = make(Expr::K::Literal, line);
        e->lit = Value::string(std::move(s));
        return e;
      }
      case Tok::Int: case Tok::Float: {
        ++p_;
        auto e = make(Expr::K::Literal, line);
        e->lit = t.type == Tok::Int ? Value::integer(t.int_value) : Value::floating(t.float_value);
        return e;
      }
      case Tok::Op:
        if (t.text == "(") {
          ++p_;
          if (accept_op(")")) return make(Expr::K::Tuple, line);
          ExprP e = parse_expr();
          if (is_op(",")) {
            auto tup = make(Expr::K::Tuple, line);
            tup->args.push_back(std::move(e));
            while (accept_op(",")) {
              if (is_op(")")) break;
              tup->args.push_back(parse_expr());
            }
            e = std::move(tup);
          }
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          ++p_;
          auto e = make(Expr::K::List, line);
          while (!accept_op("]")) {
            if (!e->args.empty()) expect_op(",");
            if (accept_op("]")) break;
            e->args.push_back(parse_expr());
          }
          return e;
        }
        if (t.text == "{") {
          ++p_;
          auto e = make(Expr::K::Dict, line);
          while (!accept_op("}")) {
            if (!e->args.empty()) expect_op(",");
            if (accept_op("}")) break;
            e->args.push_back(parse_expr());
            expect_op(":");
            e->args.push_back(parse_expr());
          }
          return e;
        }
        break;
      default: break;
    }
    fail(line, cat("unexpected ", describe(t)));
  }

  ExprP parse_postfix(ExprP node) {
    while (true) {
      int line = cur().line;
      if (accept_op(".")) {
        if (cur().type == Tok::Int) {
          auto e = make(Expr::K::Item, line);
          e->args.push_back(std::move(node));
          auto idx = make(Expr::K::Literal, line);
          idx->lit = Value::integer(t_[p_++].int_value);
          e->args.push_back(std::move(idx));
          node = std::move(e);
        } else {
          auto e = make(Expr::K::Attr, line);
          e->name = expect_name();
          e->args.push_back(std::move(node));
          node = std::move(e);
        }
      } else if (accept_op("[")) {
        node = parse_subscript(std::move(node), line);
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprP parse_subscript(ExprP obj, int line) {
    ExprP parts[3];
    bool slice = false;
    for (int i = 0; i < 3; ++i) {
      if (!is_op(":") && !is_op("]")) parts[i] = parse_expr();
      if (i < 2 && accept_op(":")) { slice = true; continue; }
      break;
    }
    expect_op("]");
    if (!slice) {
      if (!parts[0]) fail(line, "expected an index inside '[]'");
      auto e = make(Expr::K::Item, line);
      e->args.push_back(std::move(obj));
      e->args.push_back(std::move(parts[0]));
      return e;
    }
    auto e = make(Expr::K::Slice, line);
    e->args.push_back(std::move(obj));
    for (auto& part : parts) e->args.push_back(std::move(part));
    return e;
  }

  // `(` args `)` appended to an existing Call/Filter/Test node (args[0] is the callee/subject).
  void parse_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!accept_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (accept_op(")")) break;
      if (is_op("*") || is_op("**")) fail(cur().line, "*args and **kwargs in calls are not supported");
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
        std::string k = t_[p_].text;
        p_ += 2;
        e.kwargs.emplace_back(k, parse_expr());
      } else {
        if (!e.kwargs.empty()) fail(cur().line, "positional argument after keyword argument");
        e.args.push_back(parse_expr());
      }
    }
  }

  ExprP parse_call(ExprP callee) {
    auto e = make(Expr::K::Call, cur().line);
    e->args.push_back(std::move(callee));
    parse_args(*e);
    return e;
  }

  std::string dotted_name() {
    std::string n = expect_name();
    while (is_op(".") && peek().type == Tok::Name) {
      ++p_;
      n += '.';
      n += expect_name();
    }
    return n;
  }

  // One filter application `name[(args)]` to node (null: the body of a filter/set block).
  ExprP parse_filter(ExprP node, int line) {
    auto f = make(Expr::K::Filter, line);
    f->name = dotted_name();
    if (!names_.is_filter(f->name)) fail(line, cat("no filter named '", f->name, "'"));
    f->args.push_back(std::move(node));
    if (is_op("(")) parse_args(*f);
    return f;
  }

  ExprP parse_filter_chain(ExprP node) {
    while (is_op("|")) {
      int line = cur().line;
      ++p_;
      node = parse_filter(std::move(node), line);
    }
    return node;
  }

  ExprP parse_filter_expr(ExprP node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter_chain(std::move(node));
      } else if (is_name("is")) {
        int line = cur().line;
        ++p_;
        auto t = make(Expr::K::Test, line);
        t->negated = accept_name("not");
        t->name = dotted_name();
        if (!names_.is_test(t->name)) fail(line, cat("no test named '", t->name, "'"));
        t->args.push_back(std::move(node));
        if (is_op("(")) {
          parse_args(*t);
        } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                    cur().type == Tok::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) fail(cur().line, "you cannot chain multiple tests with 'is'");
          t->args.push_back(parse_postfix(parse_primary()));
        }
        node = std::move(t);
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }
};

}  // namespace

Body parse(const std::string& source, const KnownNames& names) {
  return Parser(tokenize(source), names).parse_template();
}

}  // namespace brisk::text::jinja
