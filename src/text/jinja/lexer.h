// Jinja lexer with the whitespace rules transformers uses: trim_blocks and lstrip_blocks on,
// keep_trailing_newline off, newlines normalised to "\n", `-`/`+` modifiers on every tag.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace brisk::text::jinja {

enum class Tok : uint8_t { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type;
  std::string text;  // Text data, name, decoded string, operator spelling, or number spelling
  int line = 1;
  int64_t int_value = 0;
  double float_value = 0;
};

// Throws brisk::Error "line N: ..." on unterminated tags, strings and comments.
std::vector<Token> tokenize(const std::string& source);

}  // namespace brisk::text::jinja
