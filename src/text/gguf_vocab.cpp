// Tokenizers <-> GGUF tokenizer.ggml.* metadata.
//
// HF -> GGUF follows llama.cpp's convert_hf_to_gguf.py: byte-level BPE (Llama 3, Qwen2/3) is
// "gpt2" with merges and a pre-tokenizer name; SentencePiece-style BPE with byte fallback
// (Llama 2, Mistral, Gemma) is "llama" with per-token scores. The converter reads scores from
// tokenizer.model; from a tokenizer.json alone (what brisk has) it falls back to
// LlamaHfVocab, which writes -1000 for every score and so loses the merge order. We instead
// give each token the negated rank of the first merge that produces it: llama.cpp's SPM
// tokenizer merges the adjacent pair whose result has the highest score, leftmost first, which
// then replays HF's merges rank by rank.
//
// GGUF -> HF rebuilds a tokenizer.json: for "gpt2" the byte-level pipeline with the regex of
// the pre-tokenizer name; for "llama" the Metaspace/byte-fallback pipeline with merges derived
// from the scores exactly as transformers' SentencePieceExtractor derives them.
#include "text/gguf_vocab.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "io/json_util.h"
#include "text/chat_template.h"

namespace brisk::text {

using json = nlohmann::ordered_json;

namespace {

enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// The Split regexes llama.cpp knows by pre-tokenizer name (llama-vocab.cpp), as tokenizer.json
// spells them. llama.cpp picks its pre-tokenizer by name, so a regex not listed here would be
// tokenized differently by llama.cpp: gguf_vocab_from_dir refuses it rather than guess.
struct KnownPre {
  const char* name;
  const char* regex;
  bool ignore_merges;  // llama.cpp sets this for llama-bpe only
  bool nfc;            // HF normalises Qwen input to NFC (llama.cpp does not; see below)
};
const KnownPre kKnownPres[] = {
    {"llama-bpe",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     true, false},
    {"qwen2",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     false, true},
};
const KnownPre* find_pre_by_name(const std::string& name) {
  for (const KnownPre& p : kKnownPres)
    if (name == p.name || (name == "llama3" && std::string(p.name) == "llama-bpe")) return &p;
  return nullptr;
}

const char* kSpace = "\xE2\x96\x81";  // "▁"

json read_json(const std::string& path) {
  return io::parse_json_checked(read_file(path), path, false);
}

// All pre-tokenizer / normalizer steps as a flat list (Sequence unrolled).
std::vector<json> steps(const json& j, const char* seq_key) {
  std::vector<json> out;
  if (j.is_null()) return out;
  if (j.value("type", "") == "Sequence" && j.contains(seq_key)) {
    for (const json& s : j[seq_key]) out.push_back(s);
  } else {
    out.push_back(j);
  }
  return out;
}

// llama.cpp's does_token_look_special (convert_hf_to_gguf.py): added tokens that some models
// forget to mark special but that must be control tokens.
bool looks_special(const std::string& t) {
  auto ends = [&](const std::string& s) { return t.size() >= s.size() && t.compare(t.size() - s.size(), s.size(), s) == 0; };
  auto starts = [&](const std::string& s) { return t.rfind(s, 0) == 0; };
  if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
  if (starts("<|") && ends("|>")) return true;
  if (starts("<\xEF\xBD\x9C") && ends("\xEF\xBD\x9C>")) return true;  // "<｜...｜>" (deepseek)
  return starts("<unused") && ends(">");
}

bool is_byte_token(const std::string& t) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

std::vector<std::string> merges_as_strings(const json& merges, const std::string& where) {
  std::vector<std::string> out;
  out.reserve(merges.size());
  for (const json& m : merges) {
    if (m.is_string()) out.push_back(m.get<std::string>());
    else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
      out.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    else throw Error(cat(where, ": a merge is neither \"a b\" nor [\"a\", \"b\"]"));
  }
  return out;
}

// Splits "a b" at its single separating space (byte-level tokens never contain a space).
std::pair<std::string, std::string> split_merge(const std::string& m, const std::string& where) {
  size_t sp = m.find(' ');
  if (sp == std::string::npos || m.find(' ', sp + 1) != std::string::npos)
    throw Error(cat(where, ": merge \"", m, "\" is not two tokens separated by one space"));
  return {m.substr(0, sp), m.substr(sp + 1)};
}

size_t utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

}  // namespace

// ---- HF folder -> GGUF ----------------------------------------------------------------------

GGUFVocab gguf_vocab_from_dir(const std::string& model_dir) {
  const std::string tj_path = path_join(model_dir, "tokenizer.json");
  const std::string cfg_path = path_join(model_dir, "tokenizer_config.json");
  json tj = read_json(tj_path);
  json cfg = file_exists(cfg_path) ? read_json(cfg_path) : json::object();
  BRISK_CHECK(tj.is_object() && tj.contains("model") && tj["model"].is_object(), tj_path, ": no \"model\" object");
  const json& model = tj["model"];
  BRISK_CHECK(model.value("type", "") == "BPE", tj_path, ": model type \"", model.value("type", ""),
              "\" cannot be exported to GGUF (only BPE tokenizers are supported)");
  BRISK_CHECK(model.contains("vocab") && model["vocab"].is_object(), tj_path, ": model.vocab must be an object");
  Tokenizer tok = Tokenizer::load(model_dir);

  GGUFVocab v;
  bool byte_level = false;
  for (const json& s : steps(tj.value("pre_tokenizer", json()), "pretokenizers"))
    if (s.value("type", "") == "ByteLevel") byte_level = true;
  bool byte_fallback = model.value("byte_fallback", false);
  BRISK_CHECK(byte_level || byte_fallback, tj_path,
              ": neither byte-level BPE nor SentencePiece-style BPE with byte fallback; cannot export to GGUF");
  v.model = byte_level ? "gpt2" : "llama";

  // Token strings by id; the converter pads to config.json's vocab_size when it is larger
  // (the embedding matrix has that many rows and llama.cpp wants one token per row).
  std::map<int64_t, std::string> by_id;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) by_id[it.value().get<int64_t>()] = it.key();
  struct Added {
    std::string content;
    bool special;
  };
  std::map<int64_t, Added> added;
  for (const json& a : tj.value("added_tokens", json::array())) {
    int64_t id = a.at("id").get<int64_t>();
    added[id] = {a.at("content").get<std::string>(), a.value("special", false)};
    by_id[id] = a.at("content").get<std::string>();
  }
  int64_t n_vocab = by_id.empty() ? 0 : by_id.rbegin()->first + 1;
  if (std::string cfg_json = path_join(model_dir, "config.json"); file_exists(cfg_json)) {
    json mc = read_json(cfg_json);
    if (mc.contains("vocab_size") && mc["vocab_size"].is_number_integer())
      n_vocab = std::max<int64_t>(n_vocab, mc["vocab_size"].get<int64_t>());
  }

  // Scores for SentencePiece-style vocabularies: see the top of the file.
  std::unordered_map<std::string, int64_t> first_rank;
  std::vector<std::string> merges = merges_as_strings(model.value("merges", json::array()), tj_path);
  if (v.model == "llama") {
    for (size_t r = 0; r < merges.size(); ++r) {
      size_t sp = merges[r].find(' ');
      // SentencePiece pieces contain no spaces ("▁" stands for them), so the split is unique.
      BRISK_CHECK(sp != std::string::npos, tj_path, ": merge \"", merges[r], "\" has no space");
      std::string joined = merges[r].substr(0, sp) + merges[r].substr(sp + 1);
      first_rank.emplace(joined, int64_t(r));
    }
  }
  const std::string unk = model.value("unk_token", json()).is_string() ? model["unk_token"].get<std::string>() : "";

  for (int64_t id = 0; id < n_vocab; ++id) {
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      v.tokens.push_back(cat("[PAD", id, "]"));
      v.token_types.push_back(kUnused);
      if (v.model == "llama") v.scores.push_back(-1000.0);
      continue;
    }
    const std::string& t = it->second;
    int64_t type = kNormal;
    if (auto a = added.find(id); a != added.end()) {
      type = (a->second.special || looks_special(t)) ? kControl : kUserDefined;
      if (v.model == "llama" && t == unk) type = kUnknown;
      if (v.model == "llama" && is_byte_token(t) && !a->second.special) type = kByte;
    } else if (v.model == "llama" && is_byte_token(t)) {
      type = kByte;
    } else if (v.model == "llama" && t == unk) {
      type = kUnknown;
    }
    // User-defined tokens are matched in raw text by llama.cpp; the converter writes their
    // spaces as spaces (Gemma spells them "▁").
    std::string text = t;
    if (type == kUserDefined && v.model == "llama")
      for (size_t p; (p = text.find(kSpace)) != std::string::npos;) text.replace(p, 3, " ");
    v.tokens.push_back(text);
    v.token_types.push_back(type);
    if (v.model == "llama") {
      double score = 0.0;
      if (type == kNormal) {
        auto r = first_rank.find(t);
        // Tokens no merge produces (single characters) rank after every merge result.
        score = r != first_rank.end() ? -double(r->second) : -double(int64_t(merges.size()) + id);
      }
      v.scores.push_back(score);
    }
  }

  if (v.model == "gpt2") {
    const KnownPre* pre = nullptr;
    std::string regex;
    for (const json& s : steps(tj.value("pre_tokenizer", json()), "pretokenizers"))
      if (s.value("type", "") == "Split" && s.contains("pattern") && s["pattern"].contains("Regex"))
        regex = s["pattern"]["Regex"].get<std::string>();
    for (const KnownPre& p : kKnownPres)
      if (regex == p.regex) pre = &p;
    BRISK_CHECK(pre, tj_path, ": the pre-tokenizer regex is not one llama.cpp knows (llama-bpe, qwen2); llama.cpp "
                "would tokenize this model differently, so it is not exported");
    BRISK_CHECK(model.value("ignore_merges", false) == pre->ignore_merges, tj_path, ": ignore_merges is ",
                model.value("ignore_merges", false) ? "true" : "false", " but llama.cpp's ", pre->name,
                " tokenizer uses ", pre->ignore_merges ? "true" : "false");
    bool nfc = false, other_norm = false;
    for (const json& n : steps(tj.value("normalizer", json()), "normalizers"))
      (n.value("type", "") == "NFC" ? nfc : other_norm) = true;
    BRISK_CHECK(!other_norm && nfc == pre->nfc, tj_path, ": normalizer does not match llama.cpp's ", pre->name,
                " tokenizer");
    v.pre = pre->name;
    v.merges = std::move(merges);
  } else {
    v.pre = "default";
    // A space prefix comes from a Prepend("▁") normaliser or a Metaspace that prepends; the
    // Llama tokenizer class decides it from add_prefix_space (transformers v5).
    bool prefix = false;
    for (const json& n : steps(tj.value("normalizer", json()), "normalizers"))
      if (n.value("type", "") == "Prepend" && n.value("prepend", "") == kSpace) prefix = true;
    for (const json& p : steps(tj.value("pre_tokenizer", json()), "pretokenizers"))
      if (p.value("type", "") == "Metaspace" && p.value("prepend_scheme", "always") != "never" &&
          p.value("add_prefix_space", true))
        prefix = true;
    std::string cls = cfg.value("tokenizer_class", "");
    if (cls.rfind("LlamaTokenizer", 0) == 0)
      prefix = cfg.contains("add_prefix_space") && cfg["add_prefix_space"].is_boolean() ? cfg["add_prefix_space"].get<bool>() : true;
    v.add_space_prefix = prefix;
  }

  // Special ids, as gguf-py's SpecialVocab reads them: tokenizer_config.json names them.
  auto special_id = [&](const char* key) -> int64_t {
    std::string s = special_token_text(nlohmann::ordered_json(cfg), key);
    if (s.empty()) return -1;
    auto id = tok.token_to_id(s);
    return id ? int64_t(*id) : -1;
  };
  v.bos_id = special_id("bos_token");
  v.eos_id = special_id("eos_token");
  v.unk_id = special_id("unk_token");
  v.pad_id = special_id("pad_token");
  for (const char* eot : {"<|eot_id|>", "<|im_end|>", "<end_of_turn>"})
    if (auto id = tok.token_to_id(eot); id && v.eot_id < 0) v.eot_id = *id;

  // What transformers adds around a text: llama.cpp can express only BOS first / EOS last.
  std::vector<int32_t> with = tok.encode("a", true), without = tok.encode("a", false);
  auto at = std::search(with.begin(), with.end(), without.begin(), without.end());
  BRISK_CHECK(at != with.end(), tj_path, ": post-processor changes the text's own tokens; not expressible in GGUF");
  std::vector<int32_t> prefix(with.begin(), at), suffix(at + ptrdiff_t(without.size()), with.end());
  BRISK_CHECK(prefix.size() <= 1 && suffix.size() <= 1, tj_path,
              ": post-processor adds more than one token at an end; not expressible in GGUF");
  if (!prefix.empty()) {
    if (v.bos_id < 0) v.bos_id = prefix[0];
    BRISK_CHECK(prefix[0] == v.bos_id, tj_path, ": post-processor starts with token ", prefix[0], ", not the bos token");
    v.add_bos = true;
  }
  if (!suffix.empty()) {
    if (v.eos_id < 0) v.eos_id = suffix[0];
    BRISK_CHECK(suffix[0] == v.eos_id, tj_path, ": post-processor ends with token ", suffix[0], ", not the eos token");
    v.add_eos = true;
  }
  if (auto t = find_chat_template(model_dir, false)) v.chat_template = t->text;
  return v;
}

void write_gguf_vocab(const GGUFVocab& v, io::GGUFWriter& w) {
  using io::GGUFValue;
  w.set("tokenizer.ggml.model", GGUFValue::str(v.model));
  w.set("tokenizer.ggml.pre", GGUFValue::str(v.pre));
  w.set("tokenizer.ggml.tokens", GGUFValue::strings(v.tokens));
  if (!v.scores.empty()) w.set("tokenizer.ggml.scores", GGUFValue::f32s(v.scores));
  w.set("tokenizer.ggml.token_type", GGUFValue::i32s(v.token_types));
  if (!v.merges.empty()) w.set("tokenizer.ggml.merges", GGUFValue::strings(v.merges));
  auto id = [&](const char* key, int64_t x) {
    if (x >= 0) w.set(key, GGUFValue::u32(uint32_t(x)));
  };
  id("tokenizer.ggml.bos_token_id", v.bos_id);
  id("tokenizer.ggml.eos_token_id", v.eos_id);
  id("tokenizer.ggml.unknown_token_id", v.unk_id);
  id("tokenizer.ggml.padding_token_id", v.pad_id);
  id("tokenizer.ggml.eot_token_id", v.eot_id);
  // Always explicit: llama.cpp's defaults differ by pre-tokenizer (llama-bpe adds BOS).
  w.set("tokenizer.ggml.add_bos_token", GGUFValue::boolean(v.add_bos));
  w.set("tokenizer.ggml.add_eos_token", GGUFValue::boolean(v.add_eos));
  if (v.model == "llama") w.set("tokenizer.ggml.add_space_prefix", GGUFValue::boolean(v.add_space_prefix));
  if (!v.chat_template.empty()) w.set("tokenizer.chat_template", GGUFValue::str(v.chat_template));
}

// ---- GGUF -> Tokenizer ----------------------------------------------------------------------

namespace {

// transformers' generate_merges (SentencePieceExtractor): every split of every piece into two
// pieces of the vocabulary, ordered by the piece's score (highest first), then longer left
// part, then longer right part, then by the ids of the two parts.
std::vector<std::pair<std::string, std::string>> merges_from_scores(const std::vector<std::string>& tokens,
                                                                    const std::vector<double>& scores,
                                                                    const std::vector<int64_t>& types) {
  std::unordered_map<std::string, int64_t> id_of;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (types[i] == kNormal) id_of.emplace(tokens[i], int64_t(i));
  struct M {
    int64_t l, r;
    double score;
    size_t len_l, len_r;  // in code points, as Python counts them
  };
  std::vector<M> all;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] != kNormal) continue;
    const std::string& t = tokens[i];
    std::vector<M> local;
    size_t n_cp = 0;
    for (size_t p = 0; p < t.size(); p += utf8_len((unsigned char)t[p])) ++n_cp;
    size_t cp = 0;
    for (size_t p = utf8_len((unsigned char)t[0]); p < t.size(); p += utf8_len((unsigned char)t[p])) {
      ++cp;
      auto l = id_of.find(t.substr(0, p));
      auto r = id_of.find(t.substr(p));
      if (l != id_of.end() && r != id_of.end()) local.push_back({l->second, r->second, scores[i], cp, n_cp - cp});
    }
    std::sort(local.begin(), local.end(), [](const M& a, const M& b) { return std::tie(a.l, a.r) < std::tie(b.l, b.r); });
    all.insert(all.end(), local.begin(), local.end());
  }
  // Python's sorted(..., reverse=True) is stable: equal keys keep their order.
  std::stable_sort(all.begin(), all.end(), [](const M& a, const M& b) {
    return std::tie(a.score, a.len_l, a.len_r) > std::tie(b.score, b.len_l, b.len_r);
  });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(all.size());
  for (const M& m : all) out.emplace_back(tokens[size_t(m.l)], tokens[size_t(m.r)]);
  return out;
}

template <typename T>
const T& array_of(const io::GGUFFile& f, const char* key) {
  const io::GGUFValue& v = f.get(key);
  const T* a = v.type == io::GGUFType::ARRAY ? std::get_if<T>(&v.v) : nullptr;
  if (!a) throw Error(cat(f.path(), ": GGUF key '", key, "' has the wrong type"));
  return *a;
}

}  // namespace

Tokenizer tokenizer_from_gguf(const io::GGUFFile& f) {
  // std::map-backed JSON here: ordered_json looks keys up linearly, quadratic for a vocabulary.
  using json = nlohmann::json;
  const std::string model = f.get_string("tokenizer.ggml.model");
  const auto& tokens = array_of<std::vector<std::string>>(f, "tokenizer.ggml.tokens");
  std::vector<int64_t> types(tokens.size(), kNormal);
  if (f.has("tokenizer.ggml.token_type")) {
    types = array_of<std::vector<int64_t>>(f, "tokenizer.ggml.token_type");
    BRISK_CHECK(types.size() == tokens.size(), f.path(), ": tokenizer.ggml.token_type has ", types.size(),
                " entries for ", tokens.size(), " tokens");
  }
  // tokenizer.json is JSON text: every token must be UTF-8 (byte-level and SentencePiece
  // vocabularies always are; a token that is not comes from a broken file).
  for (size_t i = 0; i < tokens.size(); ++i)
    BRISK_CHECK(io::utf8_invalid_at(tokens[i]) == std::string::npos, f.path(), ": token ", i, " is not valid UTF-8");
  auto id_key = [&](const char* key) -> int64_t {
    int64_t id = f.get_int_or(key, -1);
    BRISK_CHECK(id < int64_t(tokens.size()), f.path(), ": ", key, " ", id, " is out of range");
    return id;
  };
  int64_t bos = id_key("tokenizer.ggml.bos_token_id"), eos = id_key("tokenizer.ggml.eos_token_id");
  int64_t unk = id_key("tokenizer.ggml.unknown_token_id"), pad = id_key("tokenizer.ggml.padding_token_id");

  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    // Duplicate strings (some GGUFs have them): the first id wins.
    vocab.emplace(tokens[i], i);
    if (types[i] == kControl || types[i] == kUserDefined || (types[i] == kUnknown && model == "llama"))
      added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", types[i] != kUserDefined}});
  }

  json tj = json::object();
  tj["version"] = "1.0";
  tj["added_tokens"] = added;
  json m = {{"type", "BPE"}, {"dropout", nullptr}, {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}};
  if (model == "gpt2") {
    std::string pre_name = f.get_string_or("tokenizer.ggml.pre", "default");
    const KnownPre* pre = find_pre_by_name(pre_name);
    BRISK_CHECK(pre, f.path(), ": tokenizer.ggml.pre \"", pre_name, "\" is not supported (llama-bpe, qwen2)");
    tj["normalizer"] = pre->nfc ? json{{"type", "NFC"}} : json();
    tj["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers",
                            json::array({{{"type", "Split"}, {"pattern", {{"Regex", pre->regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                                         {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}})}};
    tj["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
    json merges = json::array();
    if (f.has("tokenizer.ggml.merges"))
      for (const std::string& s : array_of<std::vector<std::string>>(f, "tokenizer.ggml.merges")) {
        BRISK_CHECK(io::utf8_invalid_at(s) == std::string::npos, f.path(), ": a merge is not valid UTF-8");
        auto [a, b] = split_merge(s, f.path());
        merges.push_back(json::array({a, b}));
      }
    m["unk_token"] = nullptr;
    m["fuse_unk"] = false;
    m["byte_fallback"] = false;
    m["ignore_merges"] = pre->ignore_merges;
    m["vocab"] = std::move(vocab);
    m["merges"] = std::move(merges);
  } else if (model == "llama") {
    const auto& scores = array_of<std::vector<double>>(f, "tokenizer.ggml.scores");
    BRISK_CHECK(scores.size() == tokens.size(), f.path(), ": tokenizer.ggml.scores has ", scores.size(),
                " entries for ", tokens.size(), " tokens");
    bool prefix = f.has("tokenizer.ggml.add_space_prefix") ? f.get_bool("tokenizer.ggml.add_space_prefix") : true;
    tj["normalizer"] = nullptr;
    tj["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kSpace}, {"prepend_scheme", prefix ? "always" : "never"},
                           {"split", false}};
    json decoders = json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                                 {{"type", "ByteFallback"}}, {{"type", "Fuse"}}});
    if (prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    tj["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
    json merges = json::array();
    for (auto& [a, b] : merges_from_scores(tokens, scores, types)) merges.push_back(json::array({a, b}));
    m["unk_token"] = unk >= 0 ? json(tokens[size_t(unk)]) : json();
    m["fuse_unk"] = true;
    m["byte_fallback"] = true;
    m["ignore_merges"] = false;
    m["vocab"] = std::move(vocab);
    m["merges"] = std::move(merges);
  } else {
    throw Error(cat(f.path(), ": tokenizer.ggml.model \"", model, "\" is not supported (gpt2, llama)"));
  }
  tj["post_processor"] = nullptr;
  tj["model"] = std::move(m);

  // The config carries the special tokens and the BOS/EOS flags (which become the
  // "[bos] $A [eos]" post-processor, as in transformers v5).
  json cfg = json::object();
  auto name = [&](int64_t id) { return id >= 0 ? json(tokens[size_t(id)]) : json(); };
  cfg["bos_token"] = name(bos);
  cfg["eos_token"] = name(eos);
  cfg["unk_token"] = name(unk);
  cfg["pad_token"] = name(pad);
  cfg["add_bos_token"] = f.has("tokenizer.ggml.add_bos_token") && f.get_bool("tokenizer.ggml.add_bos_token") && bos >= 0;
  cfg["add_eos_token"] = f.has("tokenizer.ggml.add_eos_token") && f.get_bool("tokenizer.ggml.add_eos_token") && eos >= 0;
  return Tokenizer::from_json(tj.dump(), cfg.dump(), f.path() + " (tokenizer.ggml.*)");
}

}  // namespace brisk::text
