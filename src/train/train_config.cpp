// TrainConfig from YAML/JSON text and `--set key=value` overrides, through one table of keys.
//
// Every accepted key (and its aliases) is a row of a table; a row either sets one field,
// checking type and range, or opens a nested section (dataset, lora). Documents and overrides
// walk the same tables, so a typo gets the same "did you mean" suggestion from both, and every
// message names the key and, for documents, the line ("CONFIG.yaml:4: key 'learning_rate' must
// be a number, got 'fast'").
#include "train/train_config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <set>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/fs.h"

namespace brisk::train {
namespace {

const std::vector<std::string> kMethods = {"lora", "full"};
const std::vector<std::string> kFormats = {"auto", "text", "alpaca", "sharegpt", "messages", "prompt_completion"};
const std::vector<std::string> kSchedulers = {"constant", "constant_with_warmup", "linear", "cosine"};
const std::vector<std::string> kTruncations = {"right", "drop"};
const std::vector<std::string> kDevices = {"auto", "cpu", "cuda"};
const std::vector<std::string> kRecompute = {"none", "selective", "full"};
// The seven linear projections of a Llama-style block, in layer order ("all-linear" = all).
const std::vector<std::string> kProjections = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

// Optimal-string-alignment distance: edits plus adjacent transpositions ("lerning" ~ "learning").
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// The closest candidate when it is close enough to be a plausible typo, else "".
std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const std::string& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  // One edit per four characters, at least one and at most three.
  const size_t limit = std::clamp<size_t>(std::max(word.size(), best.size()) / 4, 1, 3);
  return best_d <= limit ? best : "";
}

// A value being read: the node, its full dotted key for messages, and where it came from.
struct Field {
  YAML::Node node;       // a handle: cheap to copy
  std::string key;       // "lora.r"
  std::string origin;    // file path, or "--set"
  bool has_lines;        // document marks are meaningful (not for override values)
  YAML::Mark key_mark = YAML::Mark::null_mark();  // where the key is: an empty value has no place

  std::string where() const {
    const YAML::Mark m = node.IsNull() && !key_mark.is_null() ? key_mark : node.Mark();
    if (has_lines && !m.is_null()) return cat(origin, ":", m.line + 1, ": ");
    return origin + ": ";
  }
  [[noreturn]] void fail(const std::string& msg) const { throw Error(where() + msg); }
  std::string got() const {
    switch (node.Type()) {
      case YAML::NodeType::Scalar: return "'" + node.Scalar() + "'";
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Map: return "a mapping";
      default: return "nothing";
    }
  }
  [[noreturn]] void type_error(const char* what) const { fail(cat("key '", key, "' must be ", what, ", got ", got())); }
};

double as_number(const Field& f) {
  if (!f.node.IsScalar()) f.type_error("a number");
  const std::string& s = f.node.Scalar();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v)) f.type_error("a number");
  return v;
}

int64_t as_integer(const Field& f) {
  if (!f.node.IsScalar()) f.type_error("an integer");
  const std::string& s = f.node.Scalar();
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE) f.type_error("an integer");
  return int64_t(v);
}

bool as_bool(const Field& f) {
  if (f.node.IsScalar()) {
    std::string s = f.node.Scalar();
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
  }
  f.type_error("true or false");
}

std::string as_string(const Field& f) {
  if (f.node.IsNull()) return "";  // `eval_path:` or JSON null: not set
  if (!f.node.IsScalar()) f.type_error("a string");
  return f.node.Scalar();
}

std::string as_choice(const Field& f, const std::vector<std::string>& valid) {
  std::string s = as_string(f);
  if (std::find(valid.begin(), valid.end(), s) != valid.end()) return s;
  std::string hint = closest(s, valid);
  f.fail(cat("key '", f.key, "': unknown value '", s, "' (", hint.empty() ? "" : "did you mean '" + hint + "'? ",
             "valid: ", join(valid), ")"));
}

// Range checks: `lo_open` / `hi_open` say whether the bound itself is excluded.
template <typename T>
T in_range(const Field& f, T v, double lo, bool lo_open, double hi = INFINITY, bool hi_open = true) {
  const double x = double(v);
  const bool ok = (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
  if (!ok) {
    std::string range = std::isinf(hi) ? cat(lo_open ? "> " : ">= ", lo)
                                       : cat(lo_open ? "(" : "[", lo, ", ", hi, hi_open ? ")" : "]");
    f.fail(cat("key '", f.key, "' must be ", std::isinf(hi) ? "" : "in ", range, ", got ", f.node.Scalar()));
  }
  return v;
}

// YAML value -> JSON value, typing plain scalars as YAML's core schema does.
nlohmann::json to_json_value(const Field& f, const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (auto it = n.begin(); it != n.end(); ++it) o[it->first.Scalar()] = to_json_value(f, it->second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (auto it = n.begin(); it != n.end(); ++it) a.push_back(to_json_value(f, *it));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted: always a string
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
      if (s == "null" || s == "Null" || s == "NULL" || s == "~") return nullptr;
      char* end = nullptr;
      errno = 0;
      const long long i = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return int64_t(i);
      errno = 0;
      const double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size() && errno == 0 && std::isfinite(d)) return d;
      return s;
    }
    default: return nullptr;
  }
}

// One accepted key: its names (canonical first, then aliases) and what reading it does.
struct Key {
  std::vector<std::string> names;
  std::function<void(TrainConfig&, const Field&)> set;  // leaf keys; for a section, its scalar shorthand
  const std::vector<Key>* section = nullptr;             // nested mapping (dataset, lora)
};

void read_section(TrainConfig& cfg, const Field& f, const std::vector<Key>& keys, const std::string& prefix);

const std::vector<Key>& dataset_keys() {
  static const std::vector<Key> keys = {
      {{"path"}, [](TrainConfig& c, const Field& f) { c.dataset.path = as_string(f); }},
      {{"format"}, [](TrainConfig& c, const Field& f) { c.dataset.format = as_choice(f, kFormats); }},
      {{"eval_path"}, [](TrainConfig& c, const Field& f) { c.dataset.eval_path = as_string(f); }},
      {{"eval_split"}, [](TrainConfig& c, const Field& f) { c.dataset.eval_split = in_range(f, as_number(f), 0, false, 1, true); }},
      {{"text_field"}, [](TrainConfig& c, const Field& f) { c.dataset.text_field = as_string(f); }},
  };
  return keys;
}

std::vector<std::string> read_target_modules(const Field& f) {
  std::vector<std::string> names;
  if (f.node.IsScalar()) {
    if (f.node.Scalar() == "all-linear") return kProjections;
    names.push_back(f.node.Scalar());
  } else if (f.node.IsSequence()) {
    for (auto it = f.node.begin(); it != f.node.end(); ++it) {
      Field item{*it, f.key, f.origin, f.has_lines};
      if (!it->IsScalar()) item.type_error("a list of module names");
      names.push_back(it->Scalar());
    }
  } else {
    f.type_error("a list of module names or \"all-linear\"");
  }
  std::vector<std::string> valid = kProjections;
  valid.push_back("all-linear");
  for (const std::string& n : names) {
    if (std::find(kProjections.begin(), kProjections.end(), n) != kProjections.end()) continue;
    std::string hint = closest(n, valid);
    f.fail(cat("key '", f.key, "': unknown module '", n, "' (", hint.empty() ? "" : "did you mean '" + hint + "'? ",
               "valid: ", join(valid), ")"));
  }
  // Canonical layer order without duplicates: the set of adapted modules is what matters.
  std::vector<std::string> out;
  for (const std::string& p : kProjections)
    if (std::find(names.begin(), names.end(), p) != names.end()) out.push_back(p);
  return out;
}

const std::vector<Key>& lora_keys() {
  static const std::vector<Key> keys = {
      {{"r"}, [](TrainConfig& c, const Field& f) { c.lora.r = int(in_range(f, as_integer(f), 1, false, 65536, false)); }},
      {{"alpha", "lora_alpha"}, [](TrainConfig& c, const Field& f) { c.lora.alpha = in_range(f, as_number(f), 0, true); }},
      {{"dropout", "lora_dropout"}, [](TrainConfig& c, const Field& f) { c.lora.dropout = in_range(f, as_number(f), 0, false, 1, true); }},
      {{"target_modules"}, [](TrainConfig& c, const Field& f) { c.lora.target_modules = read_target_modules(f); }},
      {{"rslora", "use_rslora"}, [](TrainConfig& c, const Field& f) { c.lora.rslora = as_bool(f); }},
  };
  return keys;
}

const std::vector<Key>& top_keys() {
  using C = TrainConfig;
  static const std::vector<Key> keys = {
      {{"base_model"}, [](C& c, const Field& f) { c.base_model = as_string(f); }},
      {{"method"}, [](C& c, const Field& f) { c.method = as_choice(f, kMethods); }},
      {{"dataset"}, [](C& c, const Field& f) {  // `dataset: data.jsonl` shorthand for dataset.path
         if (!f.node.IsScalar() && !f.node.IsNull()) f.type_error("a mapping or a path");
         c.dataset.path = as_string(f);
       }, &dataset_keys()},
      {{"lora"}, nullptr, &lora_keys()},
      {{"freeze_embeddings"}, [](C& c, const Field& f) { c.freeze_embeddings = as_bool(f); }},
      {{"freeze_lm_head"}, [](C& c, const Field& f) { c.freeze_lm_head = as_bool(f); }},
      {{"learning_rate"}, [](C& c, const Field& f) { c.learning_rate = in_range(f, as_number(f), 0, true); }},
      {{"num_epochs", "num_train_epochs"}, [](C& c, const Field& f) { c.num_epochs = in_range(f, as_number(f), 0, false); }},
      // Like HF, any max_steps <= 0 means "train for num_epochs"; stored as -1.
      {{"max_steps"}, [](C& c, const Field& f) {
         const int64_t v = as_integer(f);
         c.max_steps = v > 0 ? v : -1;
       }},
      {{"batch_size", "per_device_train_batch_size", "micro_batch_size"},
       [](C& c, const Field& f) { c.batch_size = in_range(f, as_integer(f), 1, false); }},
      {{"grad_accum", "gradient_accumulation_steps"}, [](C& c, const Field& f) { c.grad_accum = in_range(f, as_integer(f), 1, false); }},
      {{"max_seq_length", "max_length", "sequence_len"}, [](C& c, const Field& f) { c.max_seq_length = in_range(f, as_integer(f), 8, false); }},
      {{"truncation"}, [](C& c, const Field& f) { c.truncation = as_choice(f, kTruncations); }},
      {{"packing"}, [](C& c, const Field& f) { c.packing = as_bool(f); }},
      {{"train_on_responses_only"}, [](C& c, const Field& f) { c.train_on_responses_only = as_bool(f); }},
      {{"warmup_steps"}, [](C& c, const Field& f) { c.warmup_steps = in_range(f, as_integer(f), 0, false); }},
      {{"warmup_ratio"}, [](C& c, const Field& f) { c.warmup_ratio = in_range(f, as_number(f), 0, false, 1, false); }},
      // constant_with_warmup is HF's name for what our "constant" does (warmup, then flat).
      {{"lr_scheduler", "lr_scheduler_type"}, [](C& c, const Field& f) {
         std::string s = as_choice(f, kSchedulers);
         c.lr_scheduler = s == "constant_with_warmup" ? "constant" : s;
       }},
      {{"weight_decay"}, [](C& c, const Field& f) { c.weight_decay = in_range(f, as_number(f), 0, false); }},
      {{"adam_beta1"}, [](C& c, const Field& f) { c.adam_beta1 = in_range(f, as_number(f), 0, false, 1, true); }},
      {{"adam_beta2"}, [](C& c, const Field& f) { c.adam_beta2 = in_range(f, as_number(f), 0, false, 1, true); }},
      {{"adam_epsilon"}, [](C& c, const Field& f) { c.adam_epsilon = in_range(f, as_number(f), 0, false); }},
      {{"max_grad_norm"}, [](C& c, const Field& f) { c.max_grad_norm = as_number(f); }},
      {{"seed"}, [](C& c, const Field& f) { c.seed = uint64_t(in_range(f, as_integer(f), 0, false)); }},
      {{"output_dir"}, [](C& c, const Field& f) { c.output_dir = as_string(f); }},
      {{"device"}, [](C& c, const Field& f) { c.device = as_choice(f, kDevices); }},
      {{"recompute"}, [](C& c, const Field& f) { c.recompute = as_choice(f, kRecompute); }},
      {{"gpus"}, [](C& c, const Field& f) {
         std::string s = as_string(f);
         bool count = !s.empty() && s.size() < 6 && s.find_first_not_of("0123456789") == std::string::npos && std::stoi(s) >= 1;
         if (s != "all" && !count) f.fail(cat("key 'gpus': expected a number of GPUs (1, 2, ...) or 'all', got '", s, "'"));
         c.gpus = s;
       }},
      // HF / Unsloth spelling: true = recompute whole layers, "unsloth" = brisk's selective.
      {{"gradient_checkpointing", "use_gradient_checkpointing"}, [](C& c, const Field& f) {
         if (f.node.IsScalar() && f.node.Scalar() == "unsloth") {
           c.recompute = "selective";
           return;
         }
         c.recompute = as_bool(f) ? "full" : "none";
       }},
      {{"save_steps"}, [](C& c, const Field& f) { c.save_steps = in_range(f, as_integer(f), 0, false); }},
      {{"eval_steps"}, [](C& c, const Field& f) { c.eval_steps = in_range(f, as_integer(f), 0, false); }},
      {{"logging_steps"}, [](C& c, const Field& f) { c.logging_steps = in_range(f, as_integer(f), 1, false); }},
      {{"save_total_limit"}, [](C& c, const Field& f) { c.save_total_limit = in_range(f, as_integer(f), 0, false); }},
      {{"chat_template_kwargs"}, [](C& c, const Field& f) {
         if (f.node.IsNull()) {
           c.chat_template_kwargs_json = "{}";
           return;
         }
         if (!f.node.IsMap()) f.type_error("a mapping of template variables");
         c.chat_template_kwargs_json = to_json_value(f, f.node).dump();
       }},
  };
  return keys;
}

const Key* find_key(const std::vector<Key>& keys, const std::string& name) {
  for (const Key& k : keys)
    if (std::find(k.names.begin(), k.names.end(), name) != k.names.end()) return &k;
  return nullptr;
}

[[noreturn]] void unknown_key(const Field& at, const std::vector<Key>& keys, const std::string& prefix,
                              const std::string& name) {
  std::vector<std::string> all;
  for (const Key& k : keys) all.insert(all.end(), k.names.begin(), k.names.end());
  std::string hint = closest(name, all);
  at.fail(cat("unknown key '", prefix, name, "'", hint.empty() ? "" : " (did you mean '" + prefix + hint + "'?)"));
}

void apply_key(TrainConfig& cfg, const Key& key, const Field& f) {
  if (key.section && f.node.IsMap()) {
    read_section(cfg, f, *key.section, f.key + ".");
  } else if (key.set) {
    key.set(cfg, f);
  } else {
    f.type_error("a mapping");
  }
}

void read_section(TrainConfig& cfg, const Field& f, const std::vector<Key>& keys, const std::string& prefix) {
  std::set<const Key*> seen;  // catches `alpha` next to `lora_alpha` as well as repeated keys
  for (auto it = f.node.begin(); it != f.node.end(); ++it) {
    Field name_at{it->first, "", f.origin, f.has_lines};
    if (!it->first.IsScalar()) name_at.fail(cat("keys must be names, got ", name_at.got()));
    const std::string name = it->first.Scalar();
    const Key* key = find_key(keys, name);
    if (!key) unknown_key(name_at, keys, prefix, name);
    if (!seen.insert(key).second) name_at.fail(cat("key '", prefix, key->names[0], "' is given twice"));
    apply_key(cfg, *key, Field{it->second, prefix + name, f.origin, f.has_lines, it->first.Mark()});
  }
}

}  // namespace

TrainConfig parse_train_config(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) throw Error(cat(origin, ": invalid YAML: ", e.msg));
    throw Error(cat(origin, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg));
  }
  TrainConfig cfg;
  Field top{root, "", origin, true};
  if (root.IsNull()) throw Error(origin + ": the config is empty");
  if (!root.IsMap()) top.fail(cat("expected a mapping of keys at the top level, got ", top.got()));
  read_section(cfg, top, top_keys(), "");
  return cfg;
}

TrainConfig load_train_config(const std::string& path) { return parse_train_config(read_file(path), path); }

void apply_override(TrainConfig& cfg, const std::string& key_eq_value) {
  const std::string origin = "--set " + key_eq_value;
  const size_t eq = key_eq_value.find('=');
  BRISK_CHECK(eq != std::string::npos && eq > 0, origin, ": expected key=value (e.g. lora.r=8)");
  const std::string path = key_eq_value.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(key_eq_value.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw Error(cat(origin, ": invalid value: ", e.msg));
  }
  // Walk "a.b.c" through the sections; the last name is applied to the value.
  const std::vector<Key>* keys = &top_keys();
  std::string prefix;
  size_t start = 0;
  Field at{value, "", origin, false};
  for (;;) {
    const size_t dot = path.find('.', start);
    const std::string name = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const Key* key = find_key(*keys, name);
    if (!key) unknown_key(at, *keys, prefix, name);
    if (dot == std::string::npos) {
      apply_key(cfg, *key, Field{value, prefix + name, origin, false});
      return;
    }
    if (!key->section) at.fail(cat("key '", prefix, name, "' has no sub-keys"));
    keys = key->section;
    prefix += name + ".";
    start = dot + 1;
  }
}

void validate(const TrainConfig& cfg) {
  BRISK_CHECK(!cfg.base_model.empty(), "config: base_model is not set (the Hugging Face model folder to fine-tune)");
  BRISK_CHECK(!cfg.output_dir.empty(), "config: output_dir is not set (where checkpoints and the adapter go)");
  BRISK_CHECK(!cfg.dataset.path.empty(), "config: dataset.path is not set (a JSONL, JSON or CSV file)");
  BRISK_CHECK(cfg.max_steps > 0 || cfg.num_epochs > 0, "config: num_epochs must be > 0 unless max_steps > 0, got ",
              cfg.num_epochs);
  BRISK_CHECK(std::find(kMethods.begin(), kMethods.end(), cfg.method) != kMethods.end(), "config: unknown method '",
              cfg.method, "' (valid: ", join(kMethods), ")");
  if (cfg.method == "lora") {
    BRISK_CHECK(!cfg.lora.target_modules.empty(), "config: lora.target_modules is empty (valid: ", join(kProjections),
                ", all-linear)");
    BRISK_CHECK(!cfg.freeze_embeddings && !cfg.freeze_lm_head,
                "config: freeze_embeddings / freeze_lm_head apply to method: full only (LoRA trains adapters alone)");
  }
  BRISK_CHECK(cfg.batch_size >= 1 && cfg.grad_accum >= 1, "config: batch_size and grad_accum must be >= 1");
  BRISK_CHECK(cfg.max_seq_length >= 8, "config: max_seq_length must be >= 8, got ", cfg.max_seq_length);
  BRISK_CHECK(nlohmann::json::accept(cfg.chat_template_kwargs_json) &&
                  nlohmann::json::parse(cfg.chat_template_kwargs_json).is_object(),
              "config: chat_template_kwargs must be a JSON object, got ", cfg.chat_template_kwargs_json);
}

nlohmann::ordered_json to_json(const TrainConfig& c) {
  nlohmann::ordered_json j;
  j["base_model"] = c.base_model;
  j["method"] = c.method;
  j["dataset"] = {{"path", c.dataset.path},
                  {"format", c.dataset.format},
                  {"eval_path", c.dataset.eval_path},
                  {"eval_split", c.dataset.eval_split},
                  {"text_field", c.dataset.text_field}};
  j["lora"] = {{"r", c.lora.r},
               {"alpha", c.lora.alpha},
               {"dropout", c.lora.dropout},
               {"target_modules", c.lora.target_modules},
               {"rslora", c.lora.rslora}};
  j["freeze_embeddings"] = c.freeze_embeddings;
  j["freeze_lm_head"] = c.freeze_lm_head;
  j["learning_rate"] = c.learning_rate;
  j["num_epochs"] = c.num_epochs;
  j["max_steps"] = c.max_steps;
  j["batch_size"] = c.batch_size;
  j["grad_accum"] = c.grad_accum;
  j["max_seq_length"] = c.max_seq_length;
  j["truncation"] = c.truncation;
  j["packing"] = c.packing;
  j["train_on_responses_only"] = c.train_on_responses_only;
  j["warmup_steps"] = c.warmup_steps;
  j["warmup_ratio"] = c.warmup_ratio;
  j["lr_scheduler"] = c.lr_scheduler;
  j["weight_decay"] = c.weight_decay;
  j["adam_beta1"] = c.adam_beta1;
  j["adam_beta2"] = c.adam_beta2;
  j["adam_epsilon"] = c.adam_epsilon;
  j["max_grad_norm"] = c.max_grad_norm;
  j["seed"] = c.seed;
  j["device"] = c.device;
  j["gpus"] = c.gpus;
  j["recompute"] = c.recompute;
  j["output_dir"] = c.output_dir;
  j["save_steps"] = c.save_steps;
  j["eval_steps"] = c.eval_steps;
  j["logging_steps"] = c.logging_steps;
  j["save_total_limit"] = c.save_total_limit;
  j["chat_template_kwargs"] = nlohmann::ordered_json::parse(c.chat_template_kwargs_json, nullptr, false);
  if (j["chat_template_kwargs"].is_discarded()) j["chat_template_kwargs"] = nlohmann::ordered_json::object();
  return j;
}

}  // namespace brisk::train
