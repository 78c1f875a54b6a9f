// Dataset file readers: JSON Lines, JSON and CSV to JSON objects (see data_readers.h).
#include "train/data_readers.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "text/tok_unicode.h"

namespace brisk::train {
namespace {

using ojson = nlohmann::ordered_json;

int64_t line_of_offset(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
}

// Rejects invalid UTF-8 with the line it is on, and drops a leading byte-order mark.
std::string_view checked_utf8(std::string_view text, const std::string& path) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  size_t bad = text::utf8_invalid_at(text);
  BRISK_CHECK(bad == std::string_view::npos, path, " line ", line_of_offset(text, bad),
              ": invalid UTF-8 (byte offset ", bad, ")");
  return text;
}

// nlohmann's messages start with "[json.exception.parse_error.101] parse error at line 1,
// column 5: "; the caller already names the place, so keep only the explanation.
std::string json_error_reason(const char* what) {
  std::string s = what;
  if (size_t p = s.find("] "); p != std::string::npos && s.rfind("[json.exception", 0) == 0) s = s.substr(p + 2);
  if (s.rfind("parse error", 0) == 0) {
    if (size_t p = s.find(": "); p != std::string::npos) s = s.substr(p + 2);
  }
  return s;
}

const char* json_type_name(const ojson& v) { return v.type_name(); }

std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

// The first non-blank line, when it is a JSON object on its own (a sign of JSON Lines).
bool looks_like_json_lines(std::string_view text) {
  size_t start = 0;
  int objects = 0;
  while (start < text.size() && objects < 2) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = strip_cr(text.substr(start, end - start));
    start = end + 1;
    if (is_blank(line)) continue;
    auto v = ojson::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (!v.is_object()) return false;
    ++objects;
  }
  return objects == 2;
}

}  // namespace

std::string row_label(const SourceRows& rows, size_t i) {
  return cat(rows.numbered_by_line ? "line " : "row ", rows.source_rows.at(i));
}

SourceRows parse_jsonl(std::string_view text, const std::string& path) {
  text = checked_utf8(text, path);
  SourceRows out;
  size_t start = 0;
  int64_t line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = strip_cr(text.substr(start, end - start));
    start = end + 1;
    ++line_no;
    if (is_blank(line)) continue;
    ojson v;
    try {
      v = ojson::parse(line.begin(), line.end());
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(cat(path, " line ", line_no, ": invalid JSON: ", json_error_reason(e.what())));
    }
    BRISK_CHECK(v.is_object(), path, " line ", line_no, ": expected a JSON object, got ", json_type_name(v));
    out.rows.push_back(std::move(v));
    out.source_rows.push_back(line_no);
  }
  BRISK_CHECK(!out.rows.empty(), path, ": no rows");
  return out;
}

SourceRows parse_json(std::string_view text, const std::string& path) {
  text = checked_utf8(text, path);
  ojson doc;
  try {
    doc = ojson::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    if (looks_like_json_lines(text)) return parse_jsonl(text, path);
    if (is_blank(text)) throw Error(cat(path, ": no rows"));
    throw Error(cat(path, " line ", line_of_offset(text, e.byte > 0 ? e.byte - 1 : 0), ": invalid JSON: ",
                    json_error_reason(e.what())));
  }
  SourceRows out;
  out.numbered_by_line = false;
  const ojson* array = nullptr;
  if (doc.is_array()) {
    array = &doc;
  } else if (doc.is_object()) {
    for (const char* key : {"data", "train", "rows", "records", "examples"}) {
      auto it = doc.find(key);
      if (it != doc.end() && it->is_array() && (it->empty() || it->front().is_object())) {
        BRISK_CHECK(array == nullptr, path, ": more than one array of rows (\"", key, "\" and another); keep one");
        array = &*it;
      }
    }
    if (array == nullptr) {
      // Columns: {"col": [v0, v1, ...], ...}, every column the same length.
      size_t n = 0;
      bool columnar = !doc.empty();
      for (auto& [key, col] : doc.items()) {
        if (!col.is_array() || (n != 0 && col.size() != n) || col.empty()) {
          columnar = false;
          break;
        }
        n = col.size();
      }
      BRISK_CHECK(columnar, path,
                  ": expected an array of row objects, an object with such an array under \"data\", \"train\", "
                  "\"rows\", \"records\" or \"examples\", or an object of equal-length column arrays");
      for (size_t i = 0; i < n; ++i) {
        ojson row = ojson::object();
        for (auto& [key, col] : doc.items()) row[key] = col[i];
        out.rows.push_back(std::move(row));
        out.source_rows.push_back(static_cast<int64_t>(i) + 1);
      }
    }
  } else {
    throw Error(cat(path, ": expected an array of row objects, got ", json_type_name(doc)));
  }
  if (array) {
    for (size_t i = 0; i < array->size(); ++i) {
      const ojson& v = (*array)[i];
      BRISK_CHECK(v.is_object(), path, " row ", i + 1, ": expected a JSON object, got ", json_type_name(v));
      out.rows.push_back(v);
      out.source_rows.push_back(static_cast<int64_t>(i) + 1);
    }
  }
  BRISK_CHECK(!out.rows.empty(), path, ": no rows");
  return out;
}

SourceRows parse_csv(std::string_view text, const std::string& path) {
  text = checked_utf8(text, path);
  const size_t n = text.size();
  size_t i = 0;
  int64_t line = 1;
  // A record ends at LF or CRLF; a CR elsewhere (or before EOF) is data.
  auto at_record_end = [&](size_t k) { return k >= n || text[k] == '\n' || (text[k] == '\r' && (k + 1 >= n || text[k + 1] == '\n')); };

  std::vector<std::string> header;
  SourceRows out;
  while (i < n) {
    const int64_t record_line = line;
    std::vector<std::string> fields;
    bool any_quoted = false;
    for (;;) {
      std::string field;
      if (i < n && text[i] == '"') {
        any_quoted = true;
        const int64_t quote_line = line;
        ++i;
        for (;;) {
          BRISK_CHECK(i < n, path, " line ", quote_line, ": unterminated quoted field");
          char c = text[i++];
          if (c == '"') {
            if (i < n && text[i] == '"') {
              field += '"';
              ++i;
            } else {
              break;
            }
          } else {
            if (c == '\n') ++line;
            field += c;
          }
        }
        BRISK_CHECK(at_record_end(i) || text[i] == ',', path, " line ", line,
                    ": unexpected text after a closing quote (a quote inside a quoted field is written \"\")");
      } else {
        while (!at_record_end(i) && text[i] != ',') field += text[i++];
      }
      fields.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < n && text[i] == '\r') ++i;
      if (i < n && text[i] == '\n') {
        ++i;
        ++line;
      }
      break;
    }
    if (fields.size() == 1 && fields[0].empty() && !any_quoted) continue;  // blank line
    if (header.empty()) {
      std::set<std::string> seen;
      for (size_t c = 0; c < fields.size(); ++c) {
        BRISK_CHECK(!fields[c].empty(), path, " line ", record_line, ": header column ", c + 1, " has no name");
        BRISK_CHECK(seen.insert(fields[c]).second, path, " line ", record_line, ": duplicate column '", fields[c],
                    "' in the header");
      }
      header = std::move(fields);
      continue;
    }
    BRISK_CHECK(fields.size() == header.size(), path, " line ", record_line, ": ", fields.size(),
                " fields, but the header has ", header.size());
    ojson row = ojson::object();
    for (size_t c = 0; c < fields.size(); ++c) row[header[c]] = std::move(fields[c]);
    out.rows.push_back(std::move(row));
    out.source_rows.push_back(record_line);
  }
  BRISK_CHECK(!out.rows.empty(), path, ": no rows", header.empty() ? "" : " (only a header)");
  return out;
}

SourceRows read_source_rows(const std::string& path) {
  std::string ext;
  if (size_t dot = path.find_last_of('.'); dot != std::string::npos && path.find('/', dot) == std::string::npos)
    ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext != ".jsonl" && ext != ".json" && ext != ".csv")
    throw Error(cat(path, ": unsupported dataset file extension '", ext, "' (supported: .jsonl, .json, .csv)"));
  std::string text = read_file(path);
  if (ext == ".jsonl") return parse_jsonl(text, path);
  if (ext == ".json") return parse_json(text, path);
  return parse_csv(text, path);
}

}  // namespace brisk::train
