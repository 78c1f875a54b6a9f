// Jinja engine: Python printing, arithmetic, tojson, undefined semantics, filters, tests and
// str/dict/list methods. Expected values are what CPython + Jinja2 produce.
#include <gtest/gtest.h>

#include "test_jinja_util.h"

namespace {
using brisk::text::jinja::testing::error_of;
using brisk::text::jinja::testing::render;
using json = nlohmann::ordered_json;

TEST(JinjaValues, PythonStrOfValues) {
  EXPECT_EQ(render("{{ true }} {{ false }} {{ none }} {{ 3 }} {{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.5e-7 }}"),
            "True False None 3 1.0 0.30000000000000004 1e+20 1.5e-07");
  EXPECT_EQ(render("{{ ['a', 1, none, true, 2.5] }}"), "['a', 1, None, True, 2.5]");
  EXPECT_EQ(render("{{ {'k': 'v', 'n': [1]} }}"), "{'k': 'v', 'n': [1]}");
  EXPECT_EQ(render("{{ [\"it's\", 'say \"hi\"', 'a\\nb'] }}"), "[\"it's\", 'say \"hi\"', 'a\\nb']");
  EXPECT_EQ(render("{{ (1,) }} {{ (1, 'a') }}"), "(1,) (1, 'a')");
  EXPECT_EQ(render("{{ 1e16 }} {{ 123456789012345.6 }} {{ -0.0001 }} {{ 0.00001 }}"),
            "1e+16 123456789012345.6 -0.0001 1e-05");
}

TEST(JinjaValues, ArithmeticLikePython) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }}"),
            "3 -4 1 2 3.5 2.0 1024 0.5");
  EXPECT_EQ(render("{{ 1 + 2.0 }} {{ true + 1 }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 1 ~ 'x' ~ none }}"),
            "3.0 2 ababab [1, 2] 1xNone");
  EXPECT_EQ(render("{{ -7.5 // 2 }} {{ 7.5 % 2 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }}"),
            "-4.0 1.5 True True True");
}

TEST(JinjaValues, OperatorsAndPrecedence) {
  EXPECT_EQ(render("{{ 'a' if false }}|{{ 'a' if 0 else 'b' }}|{{ not 1 == 2 }}|{{ 1 in [1, 2] }}|{{ 'x' not in 'abc' }}"),
            "|b|True|True|True");
  EXPECT_EQ(render("{{ 'Hi ' + ' x ' | trim + '!' }}"), "Hi x!");  // filters bind tighter than +
  EXPECT_EQ(render("{{ -2 | abs }} {{ 2 * 3 + 1 }} {{ 1 < 2 < 3 }} {{ 0 or 'y' }} {{ 'x' and '' }}."), "2 7 True y .");
  EXPECT_EQ(render("{{ 'ab' 'cd' }} {{ [1, 2, 3][1:] }} {{ 'hello'[::-1] }} {{ [1, 2, 3][-1] }} {{ 'héllo'[1:3] }}"),
            "abcd [2, 3] olleh 3 él");
  EXPECT_EQ(render("{{ d.a.0 }} {{ d['a'][1] }}", {{"d", {{"a", {5, 6}}}}}), "5 6");
}

TEST(JinjaValues, UndefinedSemantics) {
  json vars = {{"m", {{"role", "user"}}}};
  EXPECT_EQ(render("[{{ m.content }}][{{ nothing }}][{{ m.content is defined }}][{{ m['x'] is undefined }}]", vars),
            "[][][False][True]");
  EXPECT_EQ(render("{% if m.content %}y{% else %}n{% endif %}{{ nothing | length }}{% for x in nothing %}x{% endfor %}", vars),
            "n0");
  EXPECT_EQ(render("{{ nothing == nothing }} {{ m.content ~ 'a' }} {{ 'a' in nothing }} {{ m.content | default('d') }}", vars),
            "True a False d");
  EXPECT_EQ(render("{{ none | default('d') }} {{ '' | default('d', true) }} {{ none.attr is defined }}"), "None d False");
  EXPECT_EQ(render("{{ [1][5] is defined }}"), "False");
  EXPECT_EQ(error_of("{{ m.content.strip() }}", vars), "line 1: 'dict object' has no attribute 'content'");
  EXPECT_EQ(error_of("{{ m.content + 'x' }}", vars), "line 1: 'dict object' has no attribute 'content'");
  EXPECT_EQ(error_of("{{ nothing | tojson }}"), "line 1: Object of type Undefined is not JSON serializable");
}

TEST(JinjaValues, TojsonMatchesPythonJsonDumps) {
  json vars = {{"x", {{"name", "f"}, {"args", {{"q", "é \"ü\"\n😀"}, {"n", 1.5}, {"b", true}, {"z", nullptr}}}, {"l", json::array()}}}};
  EXPECT_EQ(render("{{ x | tojson }}", vars),
            "{\"name\": \"f\", \"args\": {\"q\": \"é \\\"ü\\\"\\n😀\", \"n\": 1.5, \"b\": true, \"z\": null}, \"l\": []}");
  EXPECT_EQ(render("{{ {'b': [1, 2], 'a': {}} | tojson(indent=2) }}"),
            "{\n  \"b\": [\n    1,\n    2\n  ],\n  \"a\": {}\n}");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}"), "{\"a\": 2, \"b\": 1}");
  EXPECT_EQ(render("{{ {'b': 1, 'a': [2]} | tojson(separators=(',', ':')) }}"), "{\"b\":1,\"a\":[2]}");
  EXPECT_EQ(render("{{ 'é\\u0001' | tojson }} {{ 'é' | tojson(ensure_ascii=true) }} {{ 1.0 | tojson }}"),
            "\"é\\u0001\" \"\\u00e9\" 1.0");
}

TEST(JinjaFilters, StringFilters) {
  EXPECT_EQ(render("[{{ '  a b \\n' | trim }}][{{ 'xxaxx' | trim('x') }}][{{ 'aBc' | upper }}{{ 'aBc' | lower }}]"),
            "[a b][a][ABCabc]");
  EXPECT_EQ(render("{{ 'hello wORLD' | capitalize }}|{{ 'hello wORLD-x' | title }}|{{ 'a-b' | replace('-', '+') }}"),
            "Hello world|Hello World-X|a+b");
  EXPECT_EQ(render("{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}"), "a\n  b\n\n  c|  a\n  b");
  EXPECT_EQ(render("[{{ 'ab' | center(6) }}][{{ 'abc' | center(6) }}]"), "[  ab  ][ abc  ]");
  EXPECT_EQ(render("{{ 'one two three four' | wordcount }} {{ 'foo bar baz qux' | truncate(9, leeway=0) }}"), "4 foo...");
  EXPECT_EQ(render("{{ '<b>x</b>  y' | striptags }} {{ '<a&b>' | e }} {{ '%s-%d' | format('a', 3) }}"),
            "x y &lt;a&amp;b&gt; a-3");
  EXPECT_EQ(render("{{ 3 | string }}{{ '12' | int + 1 }} {{ 'x' | int }} {{ '2.5' | float }} {{ 2.5 | round }} {{ 3.14159 | round(2) }}"),
            "313 0 2.5 2.0 3.14");
}

TEST(JinjaFilters, SequenceFilters) {
  json vars = {{"msgs", {{{"role", "user"}, {"n", 2}}, {{"role", "assistant"}, {"n", 1}}, {{"role", "user"}, {"n", 3}}}}};
  EXPECT_EQ(render("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='n') | list }}", vars), "[2, 3]");
  EXPECT_EQ(render("{{ msgs | rejectattr('role', 'eq', 'user') | list | length }}", vars), "1");
  EXPECT_EQ(render("{{ msgs | map(attribute='role') | unique | join(',') }}", vars), "user,assistant");
  EXPECT_EQ(render("{{ (msgs | sort(attribute='n') | first).n }}{{ (msgs | sort(attribute='n', reverse=true) | last).n }}", vars),
            "11");
  EXPECT_EQ(render("{{ msgs | sum(attribute='n') }} {{ [3, 1, 2] | max }} {{ [3, 1, 2] | min }} {{ [1, 2, 3, 4] | select('odd') | list }}",
                   vars),
            "6 3 1 [1, 3]");
  EXPECT_EQ(render("{{ [1, 2, 3] | reverse | list }} {{ 'abc' | list }} {{ [1, 2, 3, 4, 5] | batch(2) | list }}"),
            "[3, 2, 1] ['a', 'b', 'c'] [[1, 2], [3, 4], [5]]");
  EXPECT_EQ(render("{{ {'b': 1, 'A': 2} | dictsort }} {{ {'x': 1} | items | list }} {{ ['a', 'B'] | map('upper') | join }}"),
            "[('A', 2), ('b', 1)] [('x', 1)] AB");
  EXPECT_EQ(render("{{ msgs | length }} {{ 'héllo' | length }} {{ {'a': 1} | count }} {{ [] | first is undefined }}", vars),
            "3 5 1 True");
}

TEST(JinjaTests, BuiltinTests) {
  EXPECT_EQ(render("{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ 1 is iterable }}"),
            "TrueTrueTrueTrueFalse");
  EXPECT_EQ(render("{{ 1 is number }}{{ 1.5 is integer }}{{ 1 is integer }}{{ 1.5 is float }}{{ true is boolean }}{{ true is number }}"),
            "TrueFalseTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ true is true }}{{ 1 is true }}{{ false is false }}{{ none is none }}{{ range is callable }}"),
            "TrueFalseTrueTrueTrue");
  EXPECT_EQ(render("{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 2 is in [1, 2] }}{{ 'ab' is lower }}{{ 'AB' is upper }}"),
            "TrueFalseTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ 1 is eq 1 }}{{ 1 is ne 1 }}{{ 1 is lt 2 }}{{ 2 is ge 3 }}{{ 'a' is equalto 'a' }}{{ x is not defined }}"),
            "TrueFalseTrueFalseTrueTrue");
}

TEST(JinjaMethods, StringMethods) {
  EXPECT_EQ(render("[{{ ' a '.strip() }}][{{ 'xxaxx'.lstrip('x') }}][{{ '\\n\\na\\n'.rstrip('\\n') }}]"), "[a][axx][\n\na]");
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'a b c'.rsplit(' ', 1) }}"),
            "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b,c'] ['a b', 'c']");
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'bc')) }}{{ 'abc'.startswith('b') }}"), "TrueTrueFalse");
  EXPECT_EQ(render("{{ 'aaa'.replace('a', 'b', 2) }} {{ 'hello world'.title() }} {{ 'ab'.upper() }} {{ 'abcb'.find('b') }} {{ 'abcb'.count('b') }}"),
            "bba Hello World AB 1 2");
  EXPECT_EQ(render("{{ '-'.join(['a', 'b']) }} {{ '{} and {name}'.format(1, name='x') }} {{ '123'.isdigit() }}{{ 'a1'.isalpha() }}{{ ' '.isspace() }}"),
            "a-b 1 and x TrueFalseTrue");
  EXPECT_EQ(render("{{ '<think>r</think>\\n\\nanswer'.split('</think>')[-1].lstrip('\\n') }}"), "answer");
}

TEST(JinjaMethods, DictAndListMethods) {
  json vars = {{"d", {{"a", 1}, {"items", "shadowed"}}}};
  EXPECT_EQ(render("{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 5) }} {{ d.keys() | list }} {{ d.values() | list }}", vars),
            "1 None 5 ['a', 'items'] [1, 'shadowed']");
  EXPECT_EQ(render("{{ d['items'] }} {{ d.items() | list | length }}", vars), "shadowed 2");  // d.items is the method
  EXPECT_EQ(render("{{ [1, 2, 2].count(2) }} {{ ['a', 'b'].index('b') }}"), "2 1");
  // transformers renders in an ImmutableSandboxedEnvironment: mutating methods are refused.
  EXPECT_NE(error_of("{% set l = [] %}{{ l.append(1) }}").find("access to attribute 'append' of 'list' object is unsafe"),
            std::string::npos);
}

TEST(JinjaGlobals, RangeDictNamespaceStrftime) {
  EXPECT_EQ(render("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(3, 0, -1) | list }}"), "[0, 1, 2] [1, 3, 5] [3, 2, 1]");
  EXPECT_EQ(render("{{ dict(a=1, b='x') }} {% set ns = namespace(a=[1]) %}{{ ns.a }}"), "{'a': 1, 'b': 'x'} [1]");
  EXPECT_EQ(render("{{ strftime_now('%Y') | length }}"), "4");
}

}  // namespace
