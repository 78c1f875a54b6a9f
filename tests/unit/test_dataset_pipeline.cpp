// load_dataset end to end (problems with their lines, truncation policies, all-masked rows,
// eval split and eval files) and packing invariants.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/test_util.h"
#include "core/fs.h"
#include "core/rng.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "train/dataset.h"

namespace {

using json = nlohmann::ordered_json;
using namespace brisk::train;
using brisk::testing::TempDir;
using brisk::text::ChatTemplate;
using brisk::text::Tokenizer;

const Tokenizer& llama3() {
  static Tokenizer t = Tokenizer::load(brisk::testing::tokenizer_dir("llama3"));
  return t;
}
const ChatTemplate& llama3_template() {
  static ChatTemplate t = [] {
    auto src = brisk::text::find_chat_template(brisk::testing::tokenizer_dir("llama3"), false);
    return ChatTemplate(src->text, src->origin);
  }();
  return t;
}

TrainConfig config_for(const std::string& path) {
  TrainConfig cfg;
  cfg.dataset.path = path;
  return cfg;
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const brisk::Error& e) {
    return e.what();
  }
  return "";
}

TEST(DatasetLoad, BadRowsAreListedWithTheirLinesAndSkipped) {
  TempDir d;
  const std::string path = d.path + "/data.jsonl";
  brisk::write_file_atomic(path,
                           "{\"instruction\": \"Say hi\", \"output\": \"Hi\"}\n"
                           "\n"
                           "{\"instruction\": \"No output\"}\n"
                           "{\"instruction\": \"Typed\", \"output\": 7}\n"
                           "{\"instruction\": \"Say bye\", \"input\": \"politely\", \"output\": \"Goodbye\"}\n");
  LoadedDataset ds = load_dataset(config_for(path), llama3(), &llama3_template());
  EXPECT_EQ(ds.detected_format, "alpaca");
  EXPECT_EQ(ds.rows_read, 4);
  ASSERT_EQ(ds.train.size(), 2u);
  EXPECT_EQ(ds.train[0].source_row, 1);
  EXPECT_EQ(ds.train[1].source_row, 5);
  ASSERT_EQ(ds.problems.size(), 2u);
  EXPECT_EQ(ds.problems[0].source_row, 3);
  EXPECT_EQ(ds.problems[0].message, "missing field 'output'");
  EXPECT_EQ(ds.problems[1].source_row, 4);
  EXPECT_EQ(ds.problems[1].message, "field 'output' must be a string, got number");
  // The user turn joins instruction and input; only "Goodbye<|eot_id|>" is trained.
  const Example& ex = ds.train[1];
  EXPECT_NE(llama3().decode(ex.ids).find("user<|end_header_id|>\n\nSay bye\n\npolitely<|eot_id|>"), std::string::npos);
  std::vector<int32_t> trained;
  for (size_t i = 0; i < ex.ids.size(); ++i)
    if (ex.labels[i] != kIgnoreLabel) trained.push_back(ex.ids[i]);
  EXPECT_EQ(llama3().decode(trained), "Goodbye<|eot_id|>");
}

TEST(DatasetLoad, NoUsableRowIsAnErrorListingTheFirstProblems) {
  TempDir d;
  const std::string path = d.path + "/data.jsonl";
  std::string rows;
  for (int i = 0; i < 5; ++i) rows += "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n";
  brisk::write_file_atomic(path, rows);
  std::string e = error_of([&] { load_dataset(config_for(path), llama3(), &llama3_template()); });
  EXPECT_EQ(e, path + ": no usable rows (5 read); line 1: conversation ends with a 'user' turn, not an assistant turn; "
                      "line 2: conversation ends with a 'user' turn, not an assistant turn; line 3: conversation ends "
                      "with a 'user' turn, not an assistant turn; and 2 more");
}

TEST(DatasetLoad, ConfigErrorsAreClear) {
  TempDir d;
  const std::string path = d.path + "/data.jsonl";
  brisk::write_file_atomic(path, "{\"text\": \"a\"}\n");
  TrainConfig cfg = config_for(path);
  cfg.dataset.format = "chatml";
  EXPECT_NE(error_of([&] { load_dataset(cfg, llama3(), nullptr); }).find("unknown dataset format 'chatml'"), std::string::npos);
  cfg = config_for(d.path + "/empty.jsonl");
  brisk::write_file_atomic(cfg.dataset.path, "");
  EXPECT_EQ(error_of([&] { load_dataset(cfg, llama3(), nullptr); }), cfg.dataset.path + ": no rows");
  cfg = config_for(d.path + "/chat.jsonl");
  brisk::write_file_atomic(cfg.dataset.path, "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n");
  EXPECT_NE(error_of([&] { load_dataset(cfg, llama3(), nullptr); }).find("format messages needs the model's chat template"),
            std::string::npos);
  cfg = config_for(path);
  cfg.chat_template_kwargs_json = "[1]";
  EXPECT_EQ(error_of([&] { load_dataset(cfg, llama3(), nullptr); }), "chat_template_kwargs must be a JSON object, got array");
}

std::string long_text_rows(int n, int words) {
  std::string rows;
  for (int i = 0; i < n; ++i) {
    std::string text;
    for (int w = 0; w < words; ++w) text += "word" + std::to_string(w) + " ";
    rows += json{{"text", text}}.dump() + "\n";
  }
  return rows;
}

TEST(DatasetLoad, TruncationRightKeepsTheStartAndReportsIt) {
  TempDir d;
  const std::string path = d.path + "/data.jsonl";
  brisk::write_file_atomic(path, "{\"text\": \"short\"}\n" + long_text_rows(1, 200));
  TrainConfig cfg = config_for(path);
  cfg.max_seq_length = 32;
  LoadedDataset ds = load_dataset(cfg, llama3(), nullptr);
  ASSERT_EQ(ds.train.size(), 2u);
  const std::vector<int32_t> full = llama3().encode(json::parse(long_text_rows(1, 200))["text"].get<std::string>(), true);
  const size_t full_len = full.size() + 1;  // + EOS
  EXPECT_EQ(ds.train[1].ids, std::vector<int32_t>(full.begin(), full.begin() + 32));
  EXPECT_EQ(ds.train[1].labels, ds.train[1].ids);
  ASSERT_EQ(ds.problems.size(), 1u);
  EXPECT_EQ(ds.problems[0].source_row, 2);
  EXPECT_EQ(ds.problems[0].message, "longer than max_seq_length (" + std::to_string(full_len) + " > 32), truncated");
}

TEST(DatasetLoad, TruncationDropSkipsLongRows) {
  TempDir d;
  const std::string path = d.path + "/data.jsonl";
  brisk::write_file_atomic(path, long_text_rows(1, 200) + "{\"text\": \"short\"}\n");
  TrainConfig cfg = config_for(path);
  cfg.max_seq_length = 32;
  cfg.truncation = "drop";
  LoadedDataset ds = load_dataset(cfg, llama3(), nullptr);
  ASSERT_EQ(ds.train.size(), 1u);
  EXPECT_EQ(ds.train[0].source_row, 2);
  ASSERT_EQ(ds.problems.size(), 1u);
  EXPECT_EQ(ds.problems[0].source_row, 1);
  EXPECT_NE(ds.problems[0].message.find("), dropped"), std::string::npos) << ds.problems[0].message;
}

TEST(DatasetLoad, RowsWhoseResponseIsTruncatedAwayAreDropped) {
  TempDir d;
  const std::string path = d.path + "/data.csv";
  std::string long_prompt;
  for (int w = 0; w < 100; ++w) long_prompt += "context ";
  brisk::write_file_atomic(path, "prompt,completion\n\"" + long_prompt + "\",answer\nshort,fine\n");
  TrainConfig cfg = config_for(path);
  cfg.max_seq_length = 40;
  LoadedDataset ds = load_dataset(cfg, llama3(), &llama3_template());
  EXPECT_EQ(ds.detected_format, "prompt_completion");
  ASSERT_EQ(ds.train.size(), 1u);
  EXPECT_EQ(ds.train[0].source_row, 3);
  ASSERT_EQ(ds.problems.size(), 1u);
  EXPECT_EQ(ds.problems[0].source_row, 2);
  EXPECT_EQ(ds.problems[0].message, "all labels masked after truncation to 40 tokens");
}

TEST(DatasetLoad, EvalSplitIsDeterministicBySeedAndKeepsEveryExampleOnce) {
  TempDir d;
  const std::string path = d.path + "/data.jsonl";
  std::string rows;
  for (int i = 0; i < 40; ++i) rows += json{{"text", "row " + std::to_string(i)}}.dump() + "\n";
  brisk::write_file_atomic(path, rows);
  TrainConfig cfg = config_for(path);
  cfg.dataset.eval_split = 0.1;
  auto split_rows = [&](uint64_t seed) {
    cfg.seed = seed;
    LoadedDataset ds = load_dataset(cfg, llama3(), nullptr);
    std::vector<int64_t> train, eval;
    for (auto& e : ds.train) train.push_back(e.source_row);
    for (auto& e : ds.eval) eval.push_back(e.source_row);
    return std::make_pair(train, eval);
  };
  auto a = split_rows(3407), b = split_rows(3407), c = split_rows(42);
  EXPECT_EQ(a, b);
  EXPECT_NE(a.second, c.second);
  ASSERT_EQ(a.second.size(), 4u);  // ceil(0.1 * 40)
  std::vector<int64_t> all = a.first;
  all.insert(all.end(), a.second.begin(), a.second.end());
  std::sort(all.begin(), all.end());
  for (int i = 0; i < 40; ++i) EXPECT_EQ(all[i], i + 1);
  EXPECT_TRUE(std::is_sorted(a.first.begin(), a.first.end()));  // file order within each part
  // A tiny fraction still yields one eval example.
  cfg.dataset.eval_split = 0.001;
  EXPECT_EQ(split_rows(1).second.size(), 1u);
  cfg.dataset.eval_split = 1.5;
  EXPECT_NE(error_of([&] { load_dataset(cfg, llama3(), nullptr); }).find("eval_split"), std::string::npos);
}

TEST(DatasetLoad, EvalFileIsLoadedTheSameWay) {
  TempDir d;
  brisk::write_file_atomic(d.path + "/train.json", R"([{"text": "a"}, {"text": "b"}])");
  brisk::write_file_atomic(d.path + "/eval.csv", "text\nc\n\"\"\n");
  TrainConfig cfg = config_for(d.path + "/train.json");
  cfg.dataset.eval_path = d.path + "/eval.csv";
  cfg.dataset.eval_split = 0.5;  // ignored when an eval file is given
  LoadedDataset ds = load_dataset(cfg, llama3(), nullptr);
  EXPECT_EQ(ds.train.size(), 2u);
  ASSERT_EQ(ds.eval.size(), 1u);
  EXPECT_EQ(ds.eval[0].source_row, 2);
  ASSERT_EQ(ds.problems.size(), 1u);
  EXPECT_EQ(ds.problems[0].message, d.path + "/eval.csv: field 'text' is empty");
}

// --- packing ---------------------------------------------------------------------------------

std::vector<Example> random_examples(int n, uint64_t seed) {
  brisk::Rng rng(seed);
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    Example ex;
    const int len = 1 + static_cast<int>(rng.below(40));
    for (int t = 0; t < len; ++t) {
      ex.ids.push_back(static_cast<int32_t>(rng.below(1000)));
      ex.labels.push_back(rng.below(3) == 0 ? kIgnoreLabel : ex.ids.back());
    }
    ex.source_row = i + 1;
    out.push_back(std::move(ex));
  }
  return out;
}

// Every row well formed; the segments, in order, are the examples (labels at segment starts
// masked); returns the segment lengths.
void check_rows(const std::vector<PackedRow>& rows, const std::vector<Example>& examples) {
  size_t next = 0;
  for (const PackedRow& row : rows) {
    ASSERT_GE(row.cu_seqlens.size(), 2u);
    EXPECT_EQ(row.cu_seqlens.front(), 0);
    EXPECT_EQ(row.cu_seqlens.back(), static_cast<int32_t>(row.ids.size()));
    ASSERT_EQ(row.labels.size(), row.ids.size());
    ASSERT_EQ(row.positions.size(), row.ids.size());
    for (size_t s = 0; s + 1 < row.cu_seqlens.size(); ++s) {
      const int32_t b = row.cu_seqlens[s], e = row.cu_seqlens[s + 1];
      ASSERT_LT(b, e);
      ASSERT_LT(next, examples.size());
      const Example& ex = examples[next++];
      ASSERT_EQ(static_cast<size_t>(e - b), ex.ids.size());
      for (int32_t i = b; i < e; ++i) {
        EXPECT_EQ(row.positions[i], i - b);
        EXPECT_EQ(row.ids[i], ex.ids[i - b]);
        EXPECT_EQ(row.labels[i], i == b ? kIgnoreLabel : ex.labels[i - b]);
      }
    }
  }
  EXPECT_EQ(next, examples.size());
}

TEST(DatasetPacking, GreedyRowsKeepExamplesWholeAndInOrder) {
  std::vector<Example> examples = random_examples(200, 7);
  examples[5].ids.assign(150, 3);  // longer than a row: it gets one of its own
  examples[5].labels.assign(150, 3);
  const int64_t max_len = 64;
  std::vector<PackedRow> rows = pack_examples(examples, max_len);
  check_rows(rows, examples);
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t len = static_cast<int64_t>(rows[r].ids.size());
    if (rows[r].cu_seqlens.size() > 2) EXPECT_LE(len, max_len);
    // Greedy: the next row's first example would not have fit.
    if (r + 1 < rows.size()) EXPECT_GT(len + rows[r + 1].cu_seqlens[1], max_len) << "row " << r;
  }
  EXPECT_LT(rows.size(), examples.size() / 2);  // packing did pack
}

TEST(DatasetPacking, OneRowPerExampleWithoutPacking) {
  std::vector<Example> examples = random_examples(30, 11);
  std::vector<PackedRow> rows = rows_from_examples(examples);
  ASSERT_EQ(rows.size(), examples.size());
  check_rows(rows, examples);
  EXPECT_THROW(pack_examples(examples, 0), brisk::Error);
}

}  // namespace
