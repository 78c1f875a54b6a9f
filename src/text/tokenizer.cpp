#include "text/tokenizer.h"

#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "text/tok_added_tokens.h"
#include "text/tok_bpe.h"
#include "text/tok_decoder.h"
#include "text/tok_json.h"
#include "text/tok_normalizer.h"
#include "text/tok_pretokenizer.h"
#include "text/tok_unicode.h"

namespace brisk::text {

using nlohmann::json;
using namespace json_util;

// One step of post-processing for a single sequence: `items` in order, where an empty
// optional stands for the sequence itself.
struct Template {
  std::vector<std::optional<std::vector<int32_t>>> items;
};

struct Tokenizer::State {
  std::unique_ptr<BpeModel> model;
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, size_t> added_by_id;
  TokenMap added_by_content;
  std::unique_ptr<AddedTokenMatcher> raw_matcher, normalized_matcher;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Decoder> decoder;
  std::vector<Template> post;  // applied in order when add_special_tokens
  bool clean_up_spaces = false;
  bool split_special_tokens = false;
  std::string bos, eos;
  std::optional<int32_t> bos_id, eos_id;
  int32_t vocab_size = 0;

  std::optional<int32_t> token_to_id(std::string_view t) const {
    if (auto it = added_by_content.find(t); it != added_by_content.end()) return it->second;
    return model->token_to_id(t);
  }
  const AddedToken* added_token(int32_t id) const {
    auto it = added_by_id.find(id);
    return it == added_by_id.end() ? nullptr : &added[it->second];
  }
};

namespace {

json parse_json(std::string_view text, const std::string& origin) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    throw Error(cat("malformed JSON in ", origin, " at byte ", e.byte, " (truncated or invalid file)"));
  }
}

AddedToken parse_added_token(const json& j, const std::string& where) {
  AddedToken t;
  int64_t id = get_int(j, "id", where);
  BRISK_CHECK(id >= 0 && id < (int64_t(1) << 30), where, ".id ", id, " out of range");
  t.id = static_cast<int32_t>(id);
  t.content = get_string(j, "content", where);
  BRISK_CHECK(utf8_invalid_at(t.content) == std::string::npos, where, ".content is not valid UTF-8");
  t.single_word = get_bool(j, "single_word", where, false);
  t.lstrip = get_bool(j, "lstrip", where, false);
  t.rstrip = get_bool(j, "rstrip", where, false);
  t.normalized = get_bool(j, "normalized", where, !get_bool(j, "special", where, false));
  t.special = get_bool(j, "special", where, false);
  return t;
}

// A special token in tokenizer_config.json: a string, null, or an AddedToken dict.
std::string config_token(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  BRISK_CHECK(it->is_object(), "tokenizer_config.json ", key, " must be a string, null or an AddedToken object");
  return get_string(*it, "content", cat("tokenizer_config.json ", key));
}

std::vector<int32_t> template_ids(const json& special_tokens, const std::string& name) {
  const std::string where = cat("TemplateProcessing special token \"", name, "\"");
  BRISK_CHECK(special_tokens.is_object(), "TemplateProcessing.special_tokens must be an object");
  const json& st = field(special_tokens, name.c_str(), "TemplateProcessing.special_tokens");
  const json& ids = field(st, "ids", where);
  BRISK_CHECK(ids.is_array(), where, ".ids must be an array");
  std::vector<int32_t> out;
  for (const json& id : ids) {
    BRISK_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (int64_t(1) << 30), where,
                ".ids holds an invalid id");
    out.push_back(id.get<int32_t>());
  }
  return out;
}

void parse_post_processor(const json& j, std::vector<Template>& out) {
  if (j.is_null()) return;
  std::string type = type_of(j, "post_processor");
  if (type == "ByteLevel") return;  // only adjusts offsets, which brisk does not expose
  if (type == "Sequence") {
    const json& list = field(j, "processors", "Sequence post_processor");
    BRISK_CHECK(list.is_array(), "Sequence post_processor.processors must be an array");
    for (const json& p : list) parse_post_processor(p, out);
    return;
  }
  if (type == "TemplateProcessing") {
    const json& single = field(j, "single", "TemplateProcessing post_processor");
    BRISK_CHECK(single.is_array(), "TemplateProcessing.single must be an array");
    Template t;
    for (const json& item : single) {
      BRISK_CHECK(item.is_object() && item.size() == 1, "TemplateProcessing.single items must be {SpecialToken|Sequence}");
      if (auto it = item.find("SpecialToken"); it != item.end()) {
        t.items.emplace_back(template_ids(field(j, "special_tokens", "TemplateProcessing"),
                                          get_string(*it, "id", "TemplateProcessing SpecialToken")));
      } else if (auto sq = item.find("Sequence"); sq != item.end()) {
        BRISK_CHECK(get_string(*sq, "id", "TemplateProcessing Sequence") == "A",
                    "TemplateProcessing.single may only use sequence A");
        t.items.emplace_back(std::nullopt);
      } else {
        throw Error(cat("unsupported TemplateProcessing item \"", item.begin().key(), "\" in tokenizer.json"));
      }
    }
    out.push_back(std::move(t));
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {  // cls $A sep
    auto id_of = [&](const char* key) {
      const json& p = field(j, key, type);
      BRISK_CHECK(p.is_array() && p.size() == 2 && p[1].is_number_integer(), type, ".", key, " must be [token, id]");
      return std::vector<int32_t>{p[1].get<int32_t>()};
    };
    out.push_back(Template{{id_of("cls"), std::nullopt, id_of("sep")}});
    return;
  }
  throw Error(cat("unsupported post_processor type \"", type, "\" in tokenizer.json"));
}

// transformers' clean_up_tokenization: removes spaces before punctuation and contractions, as
// consecutive Python str.replace calls.
std::string clean_up_tokenization(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (auto [from, to] : kRules) {
    std::string_view f(from);
    std::string out;
    size_t prev = 0;
    for (size_t at = s.find(f); at != std::string::npos; at = s.find(f, prev)) {
      out.append(s, prev, at - prev);
      out += to;
      prev = at + f.size();
    }
    out.append(s, prev, std::string::npos);
    s = std::move(out);
  }
  return s;
}

// transformers v5 does not always run tokenizer.json as written: classes with their own
// __init__ rebuild parts of the pipeline. LlamaTokenizer keeps vocab/merges/post-processor but
// sets: no normaliser, Metaspace("▁", prepend per add_prefix_space/legacy, split=false), BPE
// with byte_fallback and fuse_unk and no unk token, decoder Replace/ByteFallback/Fuse(/Strip).
// (Qwen2Tokenizer and GemmaTokenizer rebuild to what their tokenizer.json already says.)
void apply_transformers_class(json& tj, const json& config) {
  std::string cls = config.contains("tokenizer_class") && config["tokenizer_class"].is_string()
                        ? config["tokenizer_class"].get<std::string>() : "";
  if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
  if (cls != "LlamaTokenizer") return;
  bool add_prefix_space = get_bool(config, "add_prefix_space", "tokenizer_config.json", true);
  bool legacy = get_bool(config, "legacy", "tokenizer_config.json", false);
  const char* scheme = !add_prefix_space ? "never" : legacy ? "always" : "first";
  tj["normalizer"] = nullptr;
  tj["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", scheme}, {"split", false}};
  json decoders = json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                               {{"type", "ByteFallback"}}, {{"type", "Fuse"}}});
  if (add_prefix_space) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  tj["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  if (tj.contains("model") && tj["model"].is_object()) {
    json& m = tj["model"];
    m["byte_fallback"] = true;
    m["fuse_unk"] = true;
    m["unk_token"] = nullptr;
    m["ignore_merges"] = false;
  }
}

std::shared_ptr<Tokenizer::State> build_state(json tj, const json& config) {
  apply_transformers_class(tj, config);
  auto s = std::make_shared<Tokenizer::State>();
  BRISK_CHECK(tj.is_object(), "top level must be a JSON object");
  s->model = BpeModel::from_json(field(tj, "model", "tokenizer.json"));
  auto get_null = [&](const char* key) -> const json& {
    static const json null;
    auto it = tj.find(key);
    return it == tj.end() ? null : *it;
  };
  s->normalizer = make_normalizer(get_null("normalizer"));
  s->pre_tokenizer = make_pre_tokenizer(get_null("pre_tokenizer"));
  s->decoder = make_decoder(get_null("decoder"));

  if (const json& at = get_null("added_tokens"); !at.is_null()) {
    BRISK_CHECK(at.is_array(), "added_tokens must be an array");
    for (size_t i = 0; i < at.size(); ++i) s->added.push_back(parse_added_token(at[i], cat("added_tokens[", i, "]")));
  }
  // transformers also registers the tokens named in tokenizer_config.json (added_tokens_decoder
  // and the bos/eos/unk/pad/additional special tokens) when the backend lacks them.
  auto have = [&](const std::string& content) {
    for (auto& t : s->added)
      if (t.content == content) return true;
    return false;
  };
  int32_t next_id = std::max<int32_t>(s->model->size(), 0);
  for (auto& t : s->added) next_id = std::max(next_id, t.id + 1);
  auto add_special = [&](AddedToken t, bool has_id) {
    if (t.content.empty() || have(t.content)) return;
    if (!has_id) {
      auto id = s->model->token_to_id(t.content);
      t.id = id ? *id : next_id++;
    }
    s->added.push_back(std::move(t));
  };
  if (auto it = config.find("added_tokens_decoder"); it != config.end() && it->is_object()) {
    for (auto kv = it->begin(); kv != it->end(); ++kv) {
      std::string where = cat("tokenizer_config.json added_tokens_decoder[\"", kv.key(), "\"]");
      char* end = nullptr;
      long id = std::strtol(kv.key().c_str(), &end, 10);
      BRISK_CHECK(end && *end == '\0' && !kv.key().empty() && id >= 0 && id < (1L << 30), where, ": key must be an id");
      json entry = kv.value();
      BRISK_CHECK(entry.is_object(), where, " must be an object");
      entry["id"] = id;
      add_special(parse_added_token(entry, where), true);
    }
  }
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    AddedToken t;
    t.content = config_token(config, key);
    t.special = true;
    add_special(t, false);
  }
  if (auto it = config.find("additional_special_tokens"); it != config.end() && it->is_array()) {
    for (const json& v : *it) {
      AddedToken t;
      t.special = true;
      if (v.is_string()) t.content = v.get<std::string>();
      else if (v.is_object()) t.content = get_string(v, "content", "tokenizer_config.json additional_special_tokens");
      add_special(t, false);
    }
  }

  s->vocab_size = s->model->size();
  std::vector<const AddedToken*> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  for (size_t i = 0; i < s->added.size(); ++i) {
    const AddedToken& t = s->added[i];
    s->added_by_id[t.id] = i;
    s->added_by_content.emplace(t.content, t.id);
    s->vocab_size = std::max(s->vocab_size, t.id + 1);
    if (t.normalized) {
      norm.push_back(&t);
      norm_pat.push_back(s->normalizer ? s->normalizer->normalize(t.content) : t.content);
    } else {
      raw.push_back(&t);
      raw_pat.push_back(t.content);
    }
  }
  s->raw_matcher = std::make_unique<AddedTokenMatcher>(raw, raw_pat);
  s->normalized_matcher = std::make_unique<AddedTokenMatcher>(norm, norm_pat);

  s->bos = config_token(config, "bos_token");
  s->eos = config_token(config, "eos_token");
  if (!s->bos.empty()) s->bos_id = s->token_to_id(s->bos);
  if (!s->eos.empty()) s->eos_id = s->token_to_id(s->eos);
  // transformers v5 skips the clean-up for BPE models (the only kind brisk loads) unless forced.
  s->clean_up_spaces =
      get_bool(config, "clean_up_tokenization_spaces", "tokenizer_config.json", false) &&
      get_bool(config, "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", "tokenizer_config.json", false);
  s->split_special_tokens = get_bool(config, "split_special_tokens", "tokenizer_config.json", false);

  // transformers v5 (TokenizersBackend) replaces the post-processor with "[bos] $A [eos]" when
  // tokenizer_config.json sets add_bos_token/add_eos_token, or when tokenizer.json has none.
  const json& post = get_null("post_processor");
  bool explicit_flags = config.contains("add_bos_token") || config.contains("add_eos_token");
  if (explicit_flags || post.is_null()) {
    Template t;
    bool add_bos = get_bool(config, "add_bos_token", "tokenizer_config.json", false) && !s->bos.empty();
    bool add_eos = get_bool(config, "add_eos_token", "tokenizer_config.json", false) && !s->eos.empty();
    BRISK_CHECK(!add_bos || s->bos_id, "bos_token \"", s->bos, "\" is not in the vocabulary");
    BRISK_CHECK(!add_eos || s->eos_id, "eos_token \"", s->eos, "\" is not in the vocabulary");
    if (add_bos) t.items.emplace_back(std::vector<int32_t>{*s->bos_id});
    t.items.emplace_back(std::nullopt);
    if (add_eos) t.items.emplace_back(std::vector<int32_t>{*s->eos_id});
    s->post.push_back(std::move(t));
  } else {
    parse_post_processor(post, s->post);
  }
  return s;
}

}  // namespace

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json, const std::string& origin) {
  return with_context(origin, [&] {
    try {
      json tj = parse_json(tokenizer_json, "tokenizer.json");
      json config = config_json.empty() ? json::object() : parse_json(config_json, "tokenizer_config.json");
      BRISK_CHECK(config.is_object(), "tokenizer_config.json must be a JSON object");
      return Tokenizer(build_state(std::move(tj), config));
    } catch (const json::exception& e) {  // a field of an unexpected JSON type
      throw Error(cat("invalid tokenizer JSON: ", e.what()));
    }
  });
}

Tokenizer Tokenizer::load(const std::string& dir) {
  BRISK_CHECK(dir_exists(dir), "tokenizer folder not found: ", dir);
  std::string tj_path = path_join(dir, "tokenizer.json");
  BRISK_CHECK(file_exists(tj_path), "no tokenizer.json in ", dir, " (brisk needs the Hugging Face fast-tokenizer file)");
  std::string tj = read_file(tj_path);
  std::string cfg_path = path_join(dir, "tokenizer_config.json");
  std::string cfg = file_exists(cfg_path) ? read_file(cfg_path) : std::string();
  return from_json(tj, cfg, dir);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const State& s = *s_;
  if (size_t bad = utf8_invalid_at(text); bad != std::string_view::npos)
    throw Error(cat("text is not valid UTF-8 (byte ", bad, ")"));
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Segment> raw, sub;
  std::vector<Piece> pieces;
  s.raw_matcher->split(text, s.split_special_tokens, raw);
  for (const Segment& seg : raw) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    std::string_view piece = text.substr(seg.begin, seg.end - seg.begin);
    std::string normalized = s.normalizer ? s.normalizer->normalize(piece) : std::string(piece);
    sub.clear();
    s.normalized_matcher->split(normalized, s.split_special_tokens, sub);
    for (const Segment& ss : sub) {
      if (ss.id >= 0) {
        ids.push_back(ss.id);
        continue;
      }
      pieces.clear();
      pieces.push_back({normalized.substr(ss.begin, ss.end - ss.begin), seg.begin == 0 && ss.begin == 0});
      if (s.pre_tokenizer) s.pre_tokenizer->pre_tokenize(pieces);
      for (const Piece& p : pieces) s.model->encode(p.text, ids);
    }
  }
  if (!add_special_tokens) return ids;
  for (const Template& t : s.post) {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (auto& item : t.items) {
      if (item) out.insert(out.end(), item->begin(), item->end());
      else out.insert(out.end(), ids.begin(), ids.end());
    }
    ids = std::move(out);
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const State& s = *s_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    BRISK_CHECK(id >= 0 && id < s.vocab_size, "token id ", id, " is out of range (vocabulary size ", s.vocab_size, ")");
    if (const AddedToken* t = s.added_token(id)) {
      if (!(skip_special_tokens && t->special)) tokens.push_back(t->content);
    } else if (const std::string* tok = s.model->id_to_token(id)) {
      tokens.push_back(*tok);
    }  // ids in gaps of the vocabulary have no text, as in tokenizers
  }
  std::string text;
  if (s.decoder) {
    s.decoder->decode_chain(tokens);
    for (auto& t : tokens) text += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
  }
  return s.clean_up_spaces ? clean_up_tokenization(std::move(text)) : text;
}

int32_t Tokenizer::vocab_size() const { return s_->vocab_size; }
std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const { return s_->token_to_id(token); }
std::string Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* t = s_->added_token(id)) return t->content;
  const std::string* tok = s_->model->id_to_token(id);
  return tok ? *tok : std::string();
}
bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* t = s_->added_token(id);
  return t && t->special;
}
const std::string& Tokenizer::bos_token() const { return s_->bos; }
const std::string& Tokenizer::eos_token() const { return s_->eos; }
std::optional<int32_t> Tokenizer::bos_id() const { return s_->bos_id; }
std::optional<int32_t> Tokenizer::eos_id() const { return s_->eos_id; }

// --- StreamDecoder ----------------------------------------------------------------------------

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tok_(tokenizer), skip_special_(skip_special_tokens) {}

namespace {
std::vector<int32_t> slice(const std::vector<int32_t>& v, size_t b, size_t e) {
  return std::vector<int32_t>(v.begin() + long(b), v.begin() + long(e));
}
bool ends_with_replacement(const std::string& s) { return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0; }
}  // namespace

// Decodes the window ids_[prefix_, end) and returns what it adds beyond ids_[prefix_, read_):
// re-decoding some context keeps decoders that look at neighbours (leading-space stripping,
// byte fallback runs) consistent with a one-shot decode.
std::string StreamDecoder::push(int32_t id) {
  ids_.push_back(id);
  std::string prefix_text = tok_.decode(slice(ids_, prefix_, read_), skip_special_);
  std::string full = tok_.decode(slice(ids_, prefix_, ids_.size()), skip_special_);
  // A trailing U+FFFD means an incomplete UTF-8 sequence: wait for the next token.
  if (full.size() <= prefix_text.size() || ends_with_replacement(full) || full.compare(0, prefix_text.size(), prefix_text) != 0)
    return "";
  prefix_ = read_;
  read_ = ids_.size();
  return full.substr(prefix_text.size());
}

std::string StreamDecoder::flush() {
  std::string prefix_text = tok_.decode(slice(ids_, prefix_, read_), skip_special_);
  std::string full = tok_.decode(slice(ids_, prefix_, ids_.size()), skip_special_);
  prefix_ = read_ = ids_.size();
  if (full.size() <= prefix_text.size() || full.compare(0, prefix_text.size(), prefix_text) != 0) return "";
  return full.substr(prefix_text.size());
}

}  // namespace brisk::text
