// Jinja engine: whitespace control, statements, scoping, errors. Expected outputs are what
// Jinja2 3.x renders with trim_blocks=True, lstrip_blocks=True (transformers' environment).
#include <gtest/gtest.h>

#include "test_jinja_util.h"

namespace {
using brisk::text::jinja::testing::error_of;
using brisk::text::jinja::testing::render;
using json = nlohmann::ordered_json;

TEST(JinjaWhitespace, TrimBlocksRemovesOneNewlineAfterBlockTags) {
  EXPECT_EQ(render("{% if true %}\nA\n{% endif %}\nB"), "A\nB");
  EXPECT_EQ(render("{% if true %}\n\nA{% endif %}"), "\nA");  // only one newline
  EXPECT_EQ(render("{# c #}\nA"), "A");                      // comments too
  EXPECT_EQ(render("{{ 'x' }}\nA"), "x\nA");                 // never after {{ }}
  EXPECT_EQ(render("{% if true +%}\nA{% endif %}"), "\nA");   // + keeps it
}

TEST(JinjaWhitespace, LstripBlocksRemovesIndentBeforeBlockTags) {
  EXPECT_EQ(render("  {% if true %}\n  A\n  {% endif %}\n"), "  A\n");
  EXPECT_EQ(render("x {% if true %}y{% endif %}"), "x y");   // text before the tag on the line: kept
  EXPECT_EQ(render("  {{ 'v' }}"), "  v");                   // not before {{
  EXPECT_EQ(render("\t {%+ if true %}A{% endif %}"), "\t A");  // {%+ keeps it
  EXPECT_EQ(render("a\n    {# note #}\nb"), "a\nb");
}

TEST(JinjaWhitespace, MinusStripsAllWhitespace) {
  EXPECT_EQ(render("a  \n\n  {%- if true -%}  \n\n b {%- endif %}"), "ab");
  EXPECT_EQ(render("a \n {{- 'x' -}} \n b"), "axb");
  EXPECT_EQ(render("a {#- c -#} b"), "ab");
}

TEST(JinjaWhitespace, TrailingNewlineDroppedAndNewlinesNormalised) {
  EXPECT_EQ(render("A\n"), "A");
  EXPECT_EQ(render("A\n\n"), "A\n");
  EXPECT_EQ(render("A\r\nB"), "A\nB");
}

TEST(JinjaWhitespace, RawBlockIsVerbatim) {
  EXPECT_EQ(render("{% raw %}{{ x }}{% if %}{% endraw %}"), "{{ x }}{% if %}");
}

TEST(JinjaStatements, IfElifElse) {
  const char* t = "{% if x > 2 %}big{% elif x > 0 %}small{% else %}none{% endif %}";
  EXPECT_EQ(render(t, {{"x", 5}}), "big");
  EXPECT_EQ(render(t, {{"x", 1}}), "small");
  EXPECT_EQ(render(t, {{"x", 0}}), "none");
}

TEST(JinjaStatements, ForLoopVariables) {
  EXPECT_EQ(render("{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                   "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
            "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;");
  EXPECT_EQ(render("{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }}|{% endfor %}"), "-2|1-3|2-|");
  EXPECT_EQ(render("{% for x in [1,2,3] %}{{ loop.cycle('a','b') }}{% endfor %}"), "aba");
}

TEST(JinjaStatements, ForFilterElseAndUnpacking) {
  EXPECT_EQ(render("{% for x in [1,2,3,4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}"), "2/2 4/2 ");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {{"d", {{"b", 1}, {"a", 2}}}}), "b=1;a=2;");
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}", {{"d", {{"z", 1}, {"y", 2}}}}), "zy");
}

TEST(JinjaStatements, BreakAndContinue) {
  EXPECT_EQ(render("{% for x in range(10) %}{% if x == 4 %}{% break %}{% endif %}{% if x is odd %}{% continue %}{% endif %}{{ x }}{% endfor %}"),
            "02");
}

TEST(JinjaStatements, SetScopingAndNamespace) {
  // A set inside a loop does not leak out; a namespace attribute does.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1,2] %}{% set x = i %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(render("{% set ns = namespace(x=1) %}{% for i in [1,2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}"), "4");
  EXPECT_EQ(render("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5");  // if has no scope
  EXPECT_EQ(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.v = 'z' %}{{ ns.v }}"), "z");
}

TEST(JinjaStatements, BlockSetAndFilterBlock) {
  EXPECT_EQ(render("{% set x %}  a{{ 1 }}  {% endset %}[{{ x }}]"), "[  a1  ]");
  EXPECT_EQ(render("{% set x | trim %}  a  {% endset %}[{{ x }}]"), "[a]");
  EXPECT_EQ(render("{% filter upper %}ab{{ 'c' }}{% endfilter %}"), "ABC");
  EXPECT_EQ(render("{% filter trim %}\n  x  \n{% endfilter %}!"), "x!");
}

TEST(JinjaStatements, MacrosDefaultsKwargsAndCaller) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                   "{{ greet('A') }} {{ greet('B', '?') }} {{ greet(punct='.', name='C') }}"),
            "Hi A! Hi B? Hi C.");
  EXPECT_EQ(render("{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}in{% endcall %}"), "<in>");
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"), "321");
  EXPECT_EQ(render("{% macro m(a) %}{{ a is defined }}{% endmacro %}{{ m() }}"), "False");
}

TEST(JinjaErrors, SyntaxErrorsCarryLineNumbers) {
  EXPECT_EQ(error_of("a\nb\n{% if x %}\nno end"), "line 4: unexpected end of template, expected 'elif' or 'else' or 'endif'");
  EXPECT_EQ(error_of("{{ x | nosuchfilter }}"), "line 1: no filter named 'nosuchfilter'");
  EXPECT_EQ(error_of("\n{% if x is nosuchtest %}{% endif %}"), "line 2: no test named 'nosuchtest'");
  EXPECT_EQ(error_of("{% frobnicate %}"), "line 1: unknown tag 'frobnicate'");
  EXPECT_EQ(error_of("{{ 'abc }}"), "line 1: unterminated string literal");
  EXPECT_EQ(error_of("{{ 1 +"), "line 1: unexpected end of template, expected '}}'");
}

TEST(JinjaErrors, RuntimeErrorsCarryLineNumbers) {
  EXPECT_EQ(error_of("\n\n{{ raise_exception('Bad roles') }}"), "line 3: Bad roles");
  EXPECT_EQ(error_of("{{ nope() }}"), "line 1: 'nope' is undefined");
  EXPECT_EQ(error_of("x\n{{ nope.a.b }}"), "line 2: 'nope' is undefined");
  EXPECT_EQ(error_of("{{ d.missing.deeper }}", {{"d", json::object()}}), "line 1: 'dict object' has no attribute 'missing'");
  EXPECT_EQ(error_of("{{ 'a' + 1 }}"), "line 1: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(error_of("{{ 1 // 0 }}"), "line 1: integer division or modulo by zero");
}

TEST(JinjaLimits, RunawayTemplatesStopWithAnError) {
  EXPECT_NE(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("macro recursion deeper than"), std::string::npos);
  brisk::text::jinja::Limits small;
  small.max_steps = 10'000;
  brisk::text::jinja::Template loops("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}");
  EXPECT_THROW(
      {
        try {
          loops.render(brisk::text::jinja::Value::make_dict(), small);
        } catch (const brisk::Error& e) {
          EXPECT_STREQ(e.what(), "line 1: template ran more than 10000 steps (runaway loop?)");
          throw;
        }
      },
      brisk::Error);
  small.max_output_bytes = 100;
  EXPECT_THROW(brisk::text::jinja::Template("{% for a in range(50) %}abc{% endfor %}").render(brisk::text::jinja::Value::make_dict(), small),
               brisk::Error);
  EXPECT_NE(error_of("{{ range(1000000) }}").find("range too big"), std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").find("nesting too deep"), std::string::npos);
}

}  // namespace
