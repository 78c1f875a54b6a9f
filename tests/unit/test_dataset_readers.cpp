// Dataset readers (JSONL, JSON, CSV) and format detection/conversion: shapes users write,
// quoting edge cases, and errors that name the file and line.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/fs.h"
#include "train/data_formats.h"
#include "train/data_readers.h"
#include "train/dataset.h"

namespace {

using json = nlohmann::ordered_json;
using namespace brisk::train;
using brisk::testing::TempDir;

// The brisk::Error message thrown by fn ("" when nothing is thrown).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const brisk::Error& e) {
    return e.what();
  }
  return "";
}

TEST(DatasetJsonl, ReadsObjectsSkippingBlankLinesAndKeepsLineNumbers) {
  SourceRows r = parse_jsonl("{\"text\": \"a\"}\n\n  \r\n{\"text\": \"b\"}\r\n{\"text\": \"c\"}", "d.jsonl");
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[1]["text"], "b");
  EXPECT_EQ(r.source_rows, (std::vector<int64_t>{1, 4, 5}));
  EXPECT_EQ(row_label(r, 2), "line 5");
}

TEST(DatasetJsonl, MalformedLineIsAnErrorWithItsNumber) {
  std::string e = error_of([] { parse_jsonl("{\"text\": \"a\"}\n\n{\"text\": oops}\n", "data.jsonl"); });
  EXPECT_EQ(e.rfind("data.jsonl line 3: invalid JSON: ", 0), 0u) << e;
  e = error_of([] { parse_jsonl("{\"text\": \"a\"}\n[1, 2]\n", "data.jsonl"); });
  EXPECT_EQ(e, "data.jsonl line 2: expected a JSON object, got array");
}

TEST(DatasetJsonl, EmptyFileAndInvalidUtf8AreErrors) {
  EXPECT_EQ(error_of([] { parse_jsonl("\n \n", "d.jsonl"); }), "d.jsonl: no rows");
  EXPECT_EQ(error_of([] { parse_jsonl("", "d.jsonl"); }), "d.jsonl: no rows");
  std::string e = error_of([] { parse_jsonl("{\"text\": \"ok\"}\n{\"text\": \"\xC3\x28\"}\n", "d.jsonl"); });
  EXPECT_EQ(e.rfind("d.jsonl line 2: invalid UTF-8", 0), 0u) << e;
}

TEST(DatasetJsonl, ByteOrderMarkIsIgnored) {
  SourceRows r = parse_jsonl("\xEF\xBB\xBF{\"text\": \"a\"}\n", "d.jsonl");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0]["text"], "a");
}

TEST(DatasetJson, ArrayWrappedArrayAndColumns) {
  SourceRows a = parse_json(R"([{"text": "a"}, {"text": "b"}])", "d.json");
  ASSERT_EQ(a.rows.size(), 2u);
  EXPECT_FALSE(a.numbered_by_line);
  EXPECT_EQ(row_label(a, 1), "row 2");
  for (const char* key : {"data", "train", "rows"}) {
    SourceRows w = parse_json(std::string("{\"") + key + R"(": [{"text": "a"}], "version": 2})", "d.json");
    ASSERT_EQ(w.rows.size(), 1u) << key;
    EXPECT_EQ(w.rows[0]["text"], "a");
  }
  SourceRows c = parse_json(R"({"instruction": ["i1", "i2"], "output": ["o1", "o2"]})", "d.json");
  ASSERT_EQ(c.rows.size(), 2u);
  EXPECT_EQ(c.rows[1], json::parse(R"({"instruction": "i2", "output": "o2"})"));
}

TEST(DatasetJson, JsonLinesInADotJsonFileAreAccepted) {
  SourceRows r = parse_json("{\"text\": \"a\"}\n{\"text\": \"b\"}\n", "d.json");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_TRUE(r.numbered_by_line);
  EXPECT_EQ(r.source_rows[1], 2);
}

TEST(DatasetJson, ErrorsNameTheLineAndTheShape) {
  std::string e = error_of([] { parse_json("[\n{\"text\": \"a\"},\n{\"text\": }\n]", "d.json"); });
  EXPECT_EQ(e.rfind("d.json line 3: invalid JSON: ", 0), 0u) << e;
  EXPECT_EQ(error_of([] { parse_json(R"([{"text": "a"}, 5])", "d.json"); }), "d.json row 2: expected a JSON object, got number");
  e = error_of([] { parse_json(R"({"a": [1, 2], "b": [1]})", "d.json"); });
  EXPECT_NE(e.find("expected an array of row objects"), std::string::npos) << e;
  EXPECT_EQ(error_of([] { parse_json("[]", "d.json"); }), "d.json: no rows");
  EXPECT_EQ(error_of([] { parse_json("\"text\"", "d.json"); }), "d.json: expected an array of row objects, got string");
}

TEST(DatasetCsv, QuotingEscapesAndNewlinesInsideQuotes) {
  const std::string csv =
      "instruction,input,output\r\n"
      "\"Say \"\"hi\"\"\",,\"Hello, world\"\r\n"
      "\"two\nlines\",x,\"a\r\nb\"\n"
      "\n"
      "plain,\"\",last";
  SourceRows r = parse_csv(csv, "d.csv");
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0], json::parse(R"({"instruction": "Say \"hi\"", "input": "", "output": "Hello, world"})"));
  EXPECT_EQ(r.rows[1]["instruction"], "two\nlines");
  EXPECT_EQ(r.rows[1]["output"], "a\r\nb");
  EXPECT_EQ(r.rows[2]["output"], "last");
  // Lines are counted in the file, quoted newlines included: record 2 spans lines 3-5, line 6
  // is blank, so the last record starts on line 7.
  EXPECT_EQ(r.source_rows, (std::vector<int64_t>{2, 3, 7}));
  // Column order is the header's.
  EXPECT_EQ(r.rows[0].begin().key(), "instruction");
}

TEST(DatasetCsv, MalformedRecordsNameTheirLine) {
  EXPECT_EQ(error_of([] { parse_csv("a,b\n1,2\n\"x\ny\",3\n4\n", "d.csv"); }), "d.csv line 5: 1 fields, but the header has 2");
  EXPECT_EQ(error_of([] { parse_csv("a,b\n1,2\n\"open,3\n", "d.csv"); }), "d.csv line 3: unterminated quoted field");
  std::string e = error_of([] { parse_csv("a\n\"x\"y\n", "d.csv"); });
  EXPECT_EQ(e.rfind("d.csv line 2: unexpected text after a closing quote", 0), 0u) << e;
  EXPECT_EQ(error_of([] { parse_csv("a,a\n1,2\n", "d.csv"); }), "d.csv line 1: duplicate column 'a' in the header");
  EXPECT_EQ(error_of([] { parse_csv("a,b\n", "d.csv"); }), "d.csv: no rows (only a header)");
}

TEST(DatasetFiles, DispatchOnExtension) {
  TempDir d;
  brisk::write_file_atomic(d.path + "/a.JSONL", "{\"text\": \"a\"}\n");
  brisk::write_file_atomic(d.path + "/b.csv", "text\nb\n");
  brisk::write_file_atomic(d.path + "/c.txt", "c\n");
  EXPECT_EQ(read_rows(d.path + "/a.JSONL")[0]["text"], "a");
  EXPECT_EQ(read_rows(d.path + "/b.csv")[0]["text"], "b");
  EXPECT_EQ(error_of([&] { read_rows(d.path + "/c.txt"); }),
            d.path + "/c.txt: unsupported dataset file extension '.txt' (supported: .jsonl, .json, .csv)");
  EXPECT_NE(error_of([&] { read_rows(d.path + "/missing.jsonl"); }), "");
}

// --- formats ---------------------------------------------------------------------------------

std::vector<json> rows_of(const char* jsonl) { return parse_jsonl(jsonl, "d.jsonl").rows; }

TEST(DatasetFormat, DetectsEachFormatFromKeys) {
  EXPECT_EQ(detect_format(rows_of(R"({"text": "x"})")), "text");
  EXPECT_EQ(detect_format(rows_of(R"({"instruction": "i", "input": "", "output": "o"})")), "alpaca");
  // The Stanford alpaca dump also carries a pre-formatted "text": the structured shape wins.
  EXPECT_EQ(detect_format(rows_of(R"({"instruction": "i", "output": "o", "text": "t"})")), "alpaca");
  EXPECT_EQ(detect_format(rows_of(R"({"conversations": [{"from": "human", "value": "x"}]})")), "sharegpt");
  EXPECT_EQ(detect_format(rows_of(R"({"messages": [], "tools": []})")), "messages");
  EXPECT_EQ(detect_format(rows_of(R"({"prompt": "p", "completion": "c"})")), "prompt_completion");
  EXPECT_EQ(detect_format_of(rows_of(R"({"body": "x"})"), "body"), "text");
}

TEST(DatasetFormat, UnknownAmbiguousAndInconsistentRowsAreErrorsNamingFormats) {
  std::string e = error_of([] { detect_format(rows_of(R"({"question": "q", "answer": "a"})")); });
  EXPECT_NE(e.find("row 1 keys: question, answer"), std::string::npos) << e;
  for (const char* f : {"text", "alpaca", "sharegpt", "messages", "prompt_completion"}) EXPECT_NE(e.find(f), std::string::npos) << f;
  e = error_of([] { detect_format(rows_of(R"({"messages": [], "conversations": []})")); });
  EXPECT_NE(e.find("several dataset formats (messages, sharegpt"), std::string::npos) << e;
  e = error_of([] { detect_format(rows_of("{\"text\": \"a\"}\n{\"prompt\": \"p\", \"completion\": \"c\"}")); });
  EXPECT_EQ(e, "rows disagree on the dataset format: row 1 is text, row 2 is prompt_completion (keys: prompt, completion)");
  // A row with a missing field does not block detection from the others.
  EXPECT_EQ(detect_format(rows_of("{\"instruction\": \"i\"}\n{\"instruction\": \"i\", \"output\": \"o\"}")), "alpaca");
  e = error_of([] { detect_format(rows_of(R"({"prompt": "p", "chosen": "a", "rejected": "b"})")); });
  EXPECT_NE(e.find("preference dataset"), std::string::npos) << e;
}

TEST(DatasetFormat, AlpacaBecomesAChatAndAStanfordPrompt) {
  ParsedRow r = parse_row(json::parse(R"({"instruction": "Add.", "input": "2 2", "output": "4", "system": "Be terse."})"), "alpaca");
  EXPECT_EQ(r.messages, json::parse(R"([{"role": "system", "content": "Be terse."},
      {"role": "user", "content": "Add.\n\n2 2"}, {"role": "assistant", "content": "4"}])"));
  EXPECT_EQ(r.plain_response, "4");
  EXPECT_EQ(r.plain_prompt, "Be terse.\n\n### Instruction:\nAdd.\n\n### Input:\n2 2\n\n### Response:\n");
  ParsedRow n = parse_row(json::parse(R"({"instruction": "Hi.", "input": null, "output": "Hello"})"), "alpaca");
  EXPECT_EQ(n.messages.size(), 2u);
  EXPECT_EQ(n.messages[0]["content"], "Hi.");
  EXPECT_EQ(n.plain_prompt,
            "Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\nHi.\n\n### Response:\n");
  EXPECT_EQ(alpaca_prompt("I", "X", ""),
            "Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\n\n### Instruction:\nI\n\n### Input:\nX\n\n"
            "### Response:\n");
}

TEST(DatasetFormat, ShareGptRolesMapToOpenAiRoles) {
  json row = json::parse(R"({"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "U"},
      {"from": "gpt", "value": "A"}, {"from": "tool", "value": "T"}, {"role": "assistant", "content": "B"}]})");
  std::string text = "unchanged";
  json m = row_to_messages(row, "sharegpt", &text);
  EXPECT_EQ(m, json::parse(R"([{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
      {"role": "assistant", "content": "A"}, {"role": "tool", "content": "T"}, {"role": "assistant", "content": "B"}])"));
  EXPECT_EQ(text, "unchanged");
}

TEST(DatasetFormat, MessagesKeepExtraKeysAndTools) {
  json row = json::parse(R"({"messages": [{"role": "user", "content": "q"},
      {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {}}}]},
      {"role": "tool", "content": "r"}, {"role": "assistant", "content": "done"}],
      "tools": [{"type": "function", "function": {"name": "f"}}]})");
  ParsedRow r = parse_row(row, "messages");
  EXPECT_EQ(r.messages, row["messages"]);
  EXPECT_EQ(r.tools, row["tools"]);
}

TEST(DatasetFormat, PromptCompletionStringsOrMessageLists) {
  ParsedRow s = parse_row(json::parse(R"({"prompt": "P", "completion": "C"})"), "prompt_completion");
  EXPECT_EQ(s.messages, json::parse(R"([{"role": "user", "content": "P"}, {"role": "assistant", "content": "C"}])"));
  EXPECT_EQ(s.first_trained_message, 0u);
  EXPECT_TRUE(s.has_plain);
  ParsedRow l = parse_row(json::parse(R"({"prompt": [{"role": "user", "content": "1"}, {"role": "assistant", "content": "2"},
      {"role": "user", "content": "3"}], "completion": [{"role": "assistant", "content": "4"}]})"), "prompt_completion");
  EXPECT_EQ(l.messages.size(), 4u);
  EXPECT_EQ(l.first_trained_message, 3u);  // the assistant turn inside the prompt is context
  EXPECT_FALSE(l.has_plain);
}

TEST(DatasetFormat, TextUsesTheConfiguredField) {
  std::string text;
  EXPECT_EQ(row_to_messages(json::parse(R"({"text": "hello"})"), "text", &text), json::array());
  EXPECT_EQ(text, "hello");
  EXPECT_EQ(parse_row(json::parse(R"({"body": "b"})"), "text", "body").text, "b");
}

TEST(DatasetFormat, RowProblemsNameTheField) {
  auto problem = [](const char* row, const char* format) {
    return error_of([&] { parse_row(json::parse(row), format); });
  };
  EXPECT_EQ(problem(R"({"instruction": "i"})", "alpaca"), "missing field 'output'");
  EXPECT_EQ(problem(R"({"instruction": "i", "output": 3})", "alpaca"), "field 'output' must be a string, got number");
  EXPECT_EQ(problem(R"({"text": ["a"]})", "text"), "field 'text' must be a string, got array");
  EXPECT_EQ(problem(R"({"conversations": [{"from": "bot", "value": "x"}]})", "sharegpt"),
            "conversations[0]: unknown role 'bot' (expected human, gpt, system or tool)");
  EXPECT_EQ(problem(R"({"conversations": []})", "sharegpt"), "empty conversation");
  EXPECT_EQ(problem(R"({"conversations": [{"from": "human"}]})", "sharegpt"), "conversations[0]: missing field 'value'");
  EXPECT_EQ(problem(R"({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "u"}]})", "messages"),
            "conversation ends with a 'user' turn, not an assistant turn");
  EXPECT_EQ(problem(R"({"messages": [{"role": "wizard", "content": "a"}]})", "messages"),
            "messages[0]: unknown role 'wizard' (expected system, developer, user, assistant or tool)");
  EXPECT_EQ(problem(R"({"messages": [{"role": "user", "content": 5}]})", "messages"),
            "messages[0]: field 'content' must be a string, got number");
  EXPECT_EQ(problem(R"({"messages": "hi"})", "messages"), "field 'messages' must be a list of messages, got string");
  EXPECT_EQ(problem(R"({"prompt": "p", "completion": [{"role": "assistant", "content": "c"}]})", "prompt_completion"),
            "'prompt' and 'completion' must both be strings or both be message lists (got string and array)");
  EXPECT_EQ(problem(R"({"text": "x"})", "csv"),
            "unknown dataset format 'csv' (expected auto, text, alpaca, sharegpt, messages or prompt_completion)");
}

}  // namespace
