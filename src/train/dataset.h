// Training data: reading rows (JSONL, JSON, CSV), recognising their shape (text, alpaca,
// sharegpt, messages, prompt_completion), rendering them to token ids through the model's
// chat template, masking labels (train on responses only), truncating, splitting off an eval
// set, and packing short examples into fixed-length rows without cross-contamination.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/train_config.h"

namespace brisk::text {
class Tokenizer;
class ChatTemplate;
}  // namespace brisk::text

namespace brisk::train {

constexpr int32_t kIgnoreLabel = -100;

// One tokenized example. labels[i] is the target for predicting token i from tokens < i
// (HF convention: labels aligned with ids; the loss shifts by one), or kIgnoreLabel.
struct Example {
  std::vector<int32_t> ids;
  std::vector<int32_t> labels;
  int64_t source_row = 0;  // 1-based line (JSONL, CSV) or array index (JSON) in the source file
};

// A training row: one or more examples concatenated. cu_seqlens are the segment boundaries
// (cu_seqlens[0] = 0, back() = ids.size()); positions restart at 0 in every segment.
struct PackedRow {
  std::vector<int32_t> ids, labels, positions;
  std::vector<int32_t> cu_seqlens;
};

struct RowProblem {
  int64_t source_row;
  std::string message;  // "missing field 'output'", "all labels masked", "longer than max_seq_length (3000 > 2048), truncated"
};

struct LoadedDataset {
  std::string detected_format;     // what `auto` resolved to
  std::vector<Example> train, eval;
  std::vector<RowProblem> problems;  // rows skipped or changed, with reasons
  int64_t rows_read = 0;
};

// Reads raw rows as JSON objects (CSV: header row gives the keys; values are strings).
// Throws brisk::Error naming the file and line for unreadable files or malformed rows.
std::vector<nlohmann::ordered_json> read_rows(const std::string& path);

// The format of these rows: checks the first rows' keys. Throws when it cannot tell, listing
// the formats and the keys they need.
std::string detect_format(const std::vector<nlohmann::ordered_json>& rows);

// Converts one row of `format` to OpenAI-style messages (text format: returns empty and sets
// *text). Throws brisk::Error naming the missing/mistyped field.
nlohmann::ordered_json row_to_messages(const nlohmann::ordered_json& row, const std::string& format, std::string* text);

// Tokenizes one conversation through the chat template with labels: with responses_only,
// only assistant turns (their content and end-of-turn tokens, up to the start of the next
// turn's header) are trained; otherwise every token. Works for any template by rendering
// prefixes of the conversation and diffing token ids.
Example tokenize_conversation(const nlohmann::ordered_json& messages, const text::Tokenizer& tok,
                              const text::ChatTemplate* tmpl, bool responses_only,
                              const nlohmann::ordered_json& template_kwargs);

// Everything above for a TrainConfig: reads cfg.dataset, renders, masks, truncates per
// cfg.truncation, drops rows whose labels are all masked, splits eval. Problems are listed,
// not thrown, unless no usable example remains.
LoadedDataset load_dataset(const TrainConfig& cfg, const text::Tokenizer& tok, const text::ChatTemplate* tmpl);

// Packs examples (in the given order) greedily into rows of at most max_len tokens.
std::vector<PackedRow> pack_examples(const std::vector<Example>& examples, int64_t max_len);
// One row per example (no packing), same layout.
std::vector<PackedRow> rows_from_examples(const std::vector<Example>& examples);

}  // namespace brisk::train
