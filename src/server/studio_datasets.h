// Datasets for the studio:
//   POST   /api/datasets?name=FILE.jsonl   raw body, streamed to <data-dir>/datasets (size limit)
//   GET    /api/datasets                   [{id, name, bytes, rows, file_type, format, created}]
//   DELETE /api/datasets/{id}
//   GET    /api/datasets/{id}/preview?model=ID|PATH&rows=5
// An upload is written to a temporary file and renamed into place only once it is complete and
// valid: a failed or refused upload never leaves a dataset behind.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/path_policy.h"
#include "server/studio_routes.h"

namespace brisk::text {
class Tokenizer;
class ChatTemplate;
}  // namespace brisk::text

namespace brisk::server {

constexpr int64_t kDefaultMaxUploadBytes = int64_t(1) << 30;

// "jsonl", "json" or "csv" when `head` (the first bytes of a file) looks like that type, else ""
// (binary data, or a JSON document in a .csv, ...). `ext` is the file name's extension.
std::string sniff_dataset_type(const std::string& ext, std::string_view head);

// One row of a preview: the text the model trains on, cut into segments that are trained
// (unmasked) or not, exactly as the trainer tokenizes and masks the row.
struct PreviewRow {
  std::string text;  // the concatenation of the segments' text
  std::vector<std::pair<std::string, bool>> segments;  // (text, trained)
  std::vector<std::pair<int64_t, int64_t>> trained_spans;  // [start, end) byte offsets into text
  int64_t tokens = 0, trained_tokens = 0;
  std::string error;  // the row could not be rendered (the trainer would skip it with this reason)
};

// Renders `rows` (dataset rows in `format`, "auto" detects) with the model's tokenizer and chat
// template (null: no template, as the trainer handles it), masking like train_on_responses_only.
std::vector<PreviewRow> preview_rows(const std::vector<nlohmann::ordered_json>& rows, const std::string& format,
                                     const text::Tokenizer& tok, const text::ChatTemplate* tmpl, bool responses_only);

void add_dataset_routes(StudioRoutes& routes, Store& store, const PathPolicy& paths, int64_t max_upload_bytes);

}  // namespace brisk::server
