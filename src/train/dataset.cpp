// The dataset pipeline's public entry points (dataset.h): reading, format resolution,
// tokenization with masking, truncation, the eval split and packing.
#include "train/dataset.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "train/data_formats.h"
#include "train/data_readers.h"
#include "train/data_tokenize.h"

namespace brisk::train {
namespace {

using ojson = nlohmann::ordered_json;

struct FileResult {
  std::vector<Example> examples;
  std::vector<RowProblem> problems;
  std::string format;
  int64_t rows_read = 0;
};

// Labels at index 0 are never a target (the loss predicts labels[i] from tokens < i).
bool has_target(const Example& ex) {
  return std::any_of(ex.labels.begin() + std::min<ptrdiff_t>(1, ssize(ex.labels)), ex.labels.end(),
                     [](int32_t l) { return l != kIgnoreLabel; });
}

Example tokenize_row(const ParsedRow& row, const TrainConfig& cfg, const text::Tokenizer& tok,
                     const text::ChatTemplate* tmpl, const ojson& kwargs) {
  if (row.is_text) return tokenize_text(row.text, tok);
  if (tmpl) return tokenize_chat(row.messages, row.tools, row.first_trained_message, tok, *tmpl,
                                 cfg.train_on_responses_only, kwargs);
  BRISK_ASSERT(row.has_plain, "rows without plain text are rejected before tokenizing");
  return tokenize_prompt_response(row.plain_prompt, row.plain_response, tok, cfg.train_on_responses_only);
}

FileResult load_file(const std::string& path, const TrainConfig& cfg, const text::Tokenizer& tok,
                     const text::ChatTemplate* tmpl, const ojson& kwargs) {
  SourceRows src = read_source_rows(path);
  FileResult out;
  out.rows_read = static_cast<int64_t>(src.rows.size());
  out.format = cfg.dataset.format == "auto"
                   ? with_context(path, [&] { return detect_format_of(src.rows, cfg.dataset.text_field); })
                   : cfg.dataset.format;
  if (!tmpl && (out.format == "sharegpt" || out.format == "messages"))
    throw Error(cat(path, ": format ", out.format,
                    " needs the model's chat template, and the model has none (no chat_template.jinja or "
                    "\"chat_template\" in tokenizer_config.json); use format text, alpaca or prompt_completion"));

  const size_t n = src.rows.size();
  std::vector<Example> examples(n);
  std::vector<std::string> errors(n), notes(n);  // errors drop the row, notes keep it
  std::vector<char> ok(n, 0);
  parallel_for(static_cast<int64_t>(n), 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        ParsedRow row = parse_row(src.rows[i], out.format, cfg.dataset.text_field);
        BRISK_CHECK(row.is_text || tmpl || row.has_plain,
                    "message-list prompt/completion needs the model's chat template, and the model has none");
        Example ex = tokenize_row(row, cfg, tok, tmpl, kwargs);
        const int64_t len = ssize(ex.ids);
        if (len > cfg.max_seq_length) {
          if (cfg.truncation == "drop") {
            errors[i] = cat("longer than max_seq_length (", len, " > ", cfg.max_seq_length, "), dropped");
            continue;
          }
          ex.ids.resize(cfg.max_seq_length);
          ex.labels.resize(cfg.max_seq_length);
          notes[i] = cat("longer than max_seq_length (", len, " > ", cfg.max_seq_length, "), truncated");
        }
        if (!has_target(ex)) {
          errors[i] = notes[i].empty() ? "all labels masked" : cat("all labels masked after truncation to ",
                                                                   cfg.max_seq_length, " tokens");
          notes[i].clear();
          continue;
        }
        ex.source_row = src.source_rows[i];
        examples[i] = std::move(ex);
        ok[i] = 1;
      } catch (const Error& e) {
        errors[i] = e.what();
      }
    }
  });
  for (size_t i = 0; i < n; ++i) {
    if (!errors[i].empty()) out.problems.push_back({src.source_rows[i], errors[i]});
    if (!notes[i].empty()) out.problems.push_back({src.source_rows[i], notes[i]});
    if (ok[i]) out.examples.push_back(std::move(examples[i]));
  }
  if (out.examples.empty()) {
    std::string msg = cat(path, ": no usable rows (", n, " read)");
    const std::string unit = src.numbered_by_line ? "line " : "row ";
    const size_t shown = std::min<size_t>(out.problems.size(), 3);
    for (size_t i = 0; i < shown; ++i) msg += cat("; ", unit, out.problems[i].source_row, ": ", out.problems[i].message);
    if (out.problems.size() > shown) msg += cat("; and ", out.problems.size() - shown, " more");
    throw Error(msg);
  }
  return out;
}

// Seeded shuffle, then the last ceil(fraction * n) examples (as Hugging Face's train_test_split
// rounds) become eval, at least one, always leaving one for training. Both parts keep file order.
void split_eval(std::vector<Example>& train, std::vector<Example>& eval, double fraction, uint64_t seed) {
  const size_t n = train.size();
  if (fraction <= 0 || n < 2) return;
  size_t n_eval = static_cast<size_t>(std::ceil(fraction * static_cast<double>(n)));
  n_eval = std::clamp<size_t>(n_eval, 1, n - 1);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  Rng rng(seed);
  for (size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  std::vector<char> is_eval(n, 0);
  for (size_t i = n - n_eval; i < n; ++i) is_eval[order[i]] = 1;
  std::vector<Example> kept;
  kept.reserve(n - n_eval);
  for (size_t i = 0; i < n; ++i) (is_eval[i] ? eval : kept).push_back(std::move(train[i]));
  train = std::move(kept);
}

void append_segment(PackedRow& row, const Example& ex) {
  BRISK_ASSERT(ex.ids.size() == ex.labels.size(), "example ids and labels differ in length");
  if (row.cu_seqlens.empty()) row.cu_seqlens.push_back(0);
  const size_t start = row.ids.size();
  row.ids.insert(row.ids.end(), ex.ids.begin(), ex.ids.end());
  row.labels.insert(row.labels.end(), ex.labels.begin(), ex.labels.end());
  // Nothing precedes a segment's first token inside its segment, so it is never a target; in a
  // packed row the position before it belongs to the previous example.
  if (!ex.labels.empty()) row.labels[start] = kIgnoreLabel;
  for (size_t p = 0; p < ex.ids.size(); ++p) row.positions.push_back(static_cast<int32_t>(p));
  row.cu_seqlens.push_back(static_cast<int32_t>(row.ids.size()));
}

}  // namespace

std::vector<nlohmann::ordered_json> read_rows(const std::string& path) { return read_source_rows(path).rows; }

std::string detect_format(const std::vector<nlohmann::ordered_json>& rows) { return detect_format_of(rows); }

nlohmann::ordered_json row_to_messages(const nlohmann::ordered_json& row, const std::string& format, std::string* text) {
  ParsedRow parsed = parse_row(row, format);
  if (parsed.is_text) {
    if (text) *text = parsed.text;
    return ojson::array();
  }
  return parsed.messages;
}

Example tokenize_conversation(const nlohmann::ordered_json& messages, const text::Tokenizer& tok,
                              const text::ChatTemplate* tmpl, bool responses_only,
                              const nlohmann::ordered_json& template_kwargs) {
  BRISK_CHECK(tmpl != nullptr, "this model has no chat template, so conversations cannot be rendered");
  return tokenize_chat(messages, nullptr, 0, tok, *tmpl, responses_only, template_kwargs);
}

LoadedDataset load_dataset(const TrainConfig& cfg, const text::Tokenizer& tok, const text::ChatTemplate* tmpl) {
  const DatasetConfig& dc = cfg.dataset;
  BRISK_CHECK(!dc.path.empty(), "dataset.path is not set");
  check_format_name(dc.format);
  BRISK_CHECK(cfg.truncation == "right" || cfg.truncation == "drop", "truncation must be right or drop, got '",
              cfg.truncation, "'");
  BRISK_CHECK(cfg.max_seq_length >= 2, "max_seq_length must be at least 2, got ", cfg.max_seq_length);
  BRISK_CHECK(dc.eval_split >= 0 && dc.eval_split < 1, "dataset.eval_split must be in [0, 1), got ", dc.eval_split);
  ojson kwargs;
  try {
    kwargs = ojson::parse(cfg.chat_template_kwargs_json.empty() ? "{}" : cfg.chat_template_kwargs_json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat("chat_template_kwargs is not valid JSON: ", e.what()));
  }
  BRISK_CHECK(kwargs.is_object(), "chat_template_kwargs must be a JSON object, got ", kwargs.type_name());

  LoadedDataset out;
  FileResult train = load_file(dc.path, cfg, tok, tmpl, kwargs);
  out.detected_format = train.format;
  log_info("dataset ", dc.path, ": ", train.rows_read, " rows, format ", train.format,
           dc.format == "auto" ? " (detected)" : "", ", ", train.examples.size(), " usable");
  out.rows_read = train.rows_read;
  out.train = std::move(train.examples);
  out.problems = std::move(train.problems);
  if (!dc.eval_path.empty()) {
    FileResult eval = load_file(dc.eval_path, cfg, tok, tmpl, kwargs);
    out.eval = std::move(eval.examples);
    for (auto& p : eval.problems) out.problems.push_back({p.source_row, cat(dc.eval_path, ": ", p.message)});
  } else {
    split_eval(out.train, out.eval, dc.eval_split, cfg.seed);
  }
  return out;
}

std::vector<PackedRow> pack_examples(const std::vector<Example>& examples, int64_t max_len) {
  BRISK_CHECK(max_len >= 1, "packing length must be positive, got ", max_len);
  std::vector<PackedRow> rows;
  PackedRow current;
  for (const Example& ex : examples) {
    if (ex.ids.empty()) continue;
    if (!current.ids.empty() && ssize(current.ids) + ssize(ex.ids) > max_len) {
      rows.push_back(std::move(current));
      current = PackedRow();
    }
    append_segment(current, ex);
  }
  if (!current.ids.empty()) rows.push_back(std::move(current));
  return rows;
}

std::vector<PackedRow> rows_from_examples(const std::vector<Example>& examples) {
  std::vector<PackedRow> rows;
  rows.reserve(examples.size());
  for (const Example& ex : examples) {
    if (ex.ids.empty()) continue;
    PackedRow row;
    append_segment(row, ex);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace brisk::train
