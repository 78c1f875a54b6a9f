// Readers that turn a dataset file into JSON objects, one per training row, each remembering
// where it came from so that problems can be reported as "data.jsonl line 12: ...".
//
// Accepted shapes (dispatch on the extension):
//   .jsonl  one JSON object per line; blank lines are skipped.
//   .json   an array of objects ([{...}, {...}]: pandas orient="records");
//           an object holding that array under one of "data", "train", "rows", "records",
//           "examples" (the usual dataset dumps);
//           an object of equal-length columns ({"instruction": [...], "output": [...]}: what
//           Hugging Face Dataset.to_dict() and pandas orient="list" write);
//           or JSON Lines in a file named .json (Hugging Face's "json" loader accepts both).
//   .csv    RFC 4180: comma separated, fields may be quoted ("a, b"), "" escapes a quote inside
//           quotes, quoted fields may span lines, CRLF or LF line ends; the first record is the
//           header and gives the keys; every value is a string.
// Every file must be valid UTF-8 (a leading byte-order mark is ignored).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace brisk::train {

struct SourceRows {
  std::vector<nlohmann::ordered_json> rows;  // each a JSON object
  std::vector<int64_t> source_rows;          // parallel to rows: see row_label()
  bool numbered_by_line = true;              // JSONL/CSV: 1-based line; JSON array: 1-based index
};

// Reads `path` per its extension. Throws brisk::Error "<path> line N: ..." for malformed content,
// "<path>: no rows" for a file without any.
SourceRows read_source_rows(const std::string& path);

// Parsers on in-memory text (path is used only in messages). Exposed for tests.
SourceRows parse_jsonl(std::string_view text, const std::string& path);
SourceRows parse_json(std::string_view text, const std::string& path);
SourceRows parse_csv(std::string_view text, const std::string& path);

// "line 12" or "row 12", for messages.
std::string row_label(const SourceRows& rows, size_t i);

}  // namespace brisk::train
