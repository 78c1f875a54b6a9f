#include "text/tok_bpe.h"

#include <array>
#include <cstdio>
#include <mutex>
#include <algorithm>

#include "core/error.h"
#include "text/tok_json.h"
#include "text/tok_unicode.h"

namespace brisk::text {

using namespace json_util;

// Open-addressing hash table from a pair of ids to (rank, merged id): the innermost lookup of
// BPE, so it avoids std::unordered_map's node chasing.
struct BpeModel::MergeTable {
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0, new_id = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  std::vector<Slot> slots;
  size_t mask = 0;

  static uint64_t key_of(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  static size_t hash(uint64_t k) { return size_t((k * 0x9E3779B97F4A7C15ull) >> 20); }

  explicit MergeTable(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots.resize(cap);
    mask = cap - 1;
  }
  // Later duplicates overwrite earlier ones, as collecting into a Rust HashMap does.
  void insert(int32_t a, int32_t b, int32_t rank, int32_t new_id) {
    uint64_t k = key_of(a, b);
    for (size_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == kEmpty || slots[i].key == k) {
        slots[i] = {k, rank, new_id};
        return;
      }
    }
  }
  const Slot* find(int32_t a, int32_t b) const {
    uint64_t k = key_of(a, b);
    for (size_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == k) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

// Word -> ids cache, sharded so concurrent encoders rarely contend. Bounded: when a shard is
// full new words are simply not cached (results never depend on the cache).
struct BpeModel::Cache {
  static constexpr size_t kShards = 64, kPerShard = 2048, kMaxWordBytes = 256;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  std::array<Shard, kShards> shards;
  Shard& shard(std::string_view w) { return shards[StringHash{}(w) % kShards]; }
};

BpeModel::BpeModel() = default;
BpeModel::~BpeModel() = default;

std::unique_ptr<BpeModel> BpeModel::from_json(const json& m) {
  const std::string where = "model";
  BRISK_CHECK(m.is_object(), "tokenizer.json \"model\" must be an object");
  if (auto it = m.find("type"); it != m.end()) {
    BRISK_CHECK(it->is_string(), "model.type must be a string");
    BRISK_CHECK(*it == "BPE", "unsupported model type \"", it->get<std::string>(), "\" in tokenizer.json (only BPE)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = m.find(key);
    if (it == m.end() || it->is_null()) continue;
    BRISK_CHECK(it->is_string(), "model.", key, " must be a string or null");
    BRISK_CHECK(it->get<std::string>().empty(), "unsupported BPE option ", key, "=\"", it->get<std::string>(),
                "\" in tokenizer.json");
  }
  if (auto it = m.find("dropout"); it != m.end() && !it->is_null()) {
    BRISK_CHECK(it->is_number(), "model.dropout must be a number or null");
    BRISK_CHECK(it->get<double>() == 0.0, "unsupported BPE dropout ", it->get<double>(),
                " in tokenizer.json (dropout is for training; inference needs a deterministic tokenizer)");
  }

  std::unique_ptr<BpeModel> bpe(new BpeModel());
  const json& vocab = field(m, "vocab", where);
  BRISK_CHECK(vocab.is_object(), "model.vocab must be an object of token -> id");
  bpe->vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    BRISK_CHECK(it.value().is_number_integer(), "model.vocab[\"", it.key(), "\"] must be an integer id");
    int64_t id = it.value().get<int64_t>();
    BRISK_CHECK(id >= 0 && id < (int64_t(1) << 30), "model.vocab[\"", it.key(), "\"] has id ", id, " out of range");
    bpe->vocab_[it.key()] = static_cast<int32_t>(id);
    max_id = std::max(max_id, static_cast<int32_t>(id));
  }
  // Real vocabularies are dense; a sparse one would make the id -> token table huge.
  BRISK_CHECK(size_t(max_id) < 2 * vocab.size() + 1024, "model.vocab ids are too sparse (max id ", max_id, " for ",
              vocab.size(), " tokens)");
  bpe->id_to_token_.resize(size_t(max_id + 1));
  bpe->has_id_.resize(size_t(max_id + 1));
  for (auto& [tok, id] : bpe->vocab_) {
    bpe->id_to_token_[size_t(id)] = tok;
    bpe->has_id_[size_t(id)] = true;
  }

  const json& merges = field(m, "merges", where);
  BRISK_CHECK(merges.is_array(), "model.merges must be an array");
  bpe->merges_ = std::make_unique<MergeTable>(merges.size());
  std::string left, right;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& mj = merges[rank];
    if (mj.is_string()) {  // "a b"
      const std::string& s = mj.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      BRISK_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, "model.merges[", rank,
                  "] must be two tokens separated by one space, got \"", s, "\"");
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else {  // ["a", "b"]
      BRISK_CHECK(mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string(), "model.merges[", rank,
                  "] must be \"a b\" or [\"a\", \"b\"]");
      left = mj[0].get<std::string>();
      right = mj[1].get<std::string>();
    }
    auto a = bpe->vocab_.find(left), b = bpe->vocab_.find(right), ab = bpe->vocab_.find(left + right);
    BRISK_CHECK(a != bpe->vocab_.end() && b != bpe->vocab_.end() && ab != bpe->vocab_.end(), "model.merges[", rank,
                "] (\"", left, "\", \"", right, "\") uses a token missing from model.vocab");
    bpe->merges_->insert(a->second, b->second, static_cast<int32_t>(rank), ab->second);
  }

  if (auto it = m.find("unk_token"); it != m.end() && !it->is_null()) {
    BRISK_CHECK(it->is_string(), "model.unk_token must be a string or null");
    auto u = bpe->vocab_.find(it->get<std::string>());
    BRISK_CHECK(u != bpe->vocab_.end(), "model.unk_token \"", it->get<std::string>(), "\" is not in model.vocab");
    bpe->unk_id_ = u->second;
  }
  bpe->fuse_unk_ = get_bool(m, "fuse_unk", where, false);
  bpe->byte_fallback_ = get_bool(m, "byte_fallback", where, false);
  bpe->ignore_merges_ = get_bool(m, "ignore_merges", where, false);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = bpe->vocab_.find(std::string_view(name));
    bpe->byte_ids_[b] = it == bpe->vocab_.end() ? -1 : it->second;
  }
  bpe->cache_ = std::make_unique<Cache>();
  return bpe;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= size() || !has_id_[size_t(id)]) return nullptr;
  return &id_to_token_[size_t(id)];
}

void BpeModel::encode(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(piece); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = piece.size() < Cache::kMaxWordBytes;
  if (cacheable) {
    auto& shard = cache_->shard(piece);
    std::lock_guard<std::mutex> lock(shard.mu);
    if (auto it = shard.map.find(piece); it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t start = out.size();
  merge_word(piece, out);
  if (cacheable) {
    auto& shard = cache_->shard(piece);
    std::lock_guard<std::mutex> lock(shard.mu);
    if (shard.map.size() < Cache::kPerShard)
      shard.map.emplace(std::string(piece), std::vector<int32_t>(out.begin() + long(start), out.end()));
  }
}

namespace {
struct Symbol {
  int32_t id;
  int32_t prev, next;  // indices in the symbol array, -1 at the ends
  bool removed;
};
struct Candidate {
  int32_t rank, pos, new_id;
  bool operator<(const Candidate& o) const {  // heap pops the greatest: invert for a min-heap
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};
}  // namespace

void BpeModel::merge_word(std::string_view w, std::vector<int32_t>& out) const {
  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  auto add = [&](int32_t id) {
    int32_t n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, -1, false});
    if (n > 0) symbols[size_t(n - 1)].next = n;
  };
  // One symbol per character; unknown characters go to byte tokens or (fused) unk, as tokenizers
  // does. Quirk kept on purpose: a pending unk is flushed only by a known character, so byte
  // fallback tokens can precede it.
  int32_t pending_unk = -1;
  for (size_t i = 0; i < w.size();) {
    size_t n = std::min(utf8_seq_len(static_cast<unsigned char>(w[i])), w.size() - i);
    std::string_view ch = w.substr(i, n);
    i += n;
    if (auto it = vocab_.find(ch); it != vocab_.end()) {
      if (pending_unk >= 0) add(pending_unk), pending_unk = -1;
      add(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char c : ch) all = all && byte_ids_[c] >= 0;
      if (all) {
        for (unsigned char c : ch) add(byte_ids_[c]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk >= 0) add(pending_unk);

  // Min-heap by (rank, position) kept in a reused per-thread buffer.
  thread_local std::vector<Candidate> heap;
  heap.clear();
  auto push = [&](Candidate c) {
    heap.push_back(c);
    std::push_heap(heap.begin(), heap.end());
  };
  for (size_t k = 0; k + 1 < symbols.size(); ++k)
    if (auto m = merges_->find(symbols[k].id, symbols[k + 1].id)) push({m->rank, static_cast<int32_t>(k), m->new_id});
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& cur = symbols[size_t(top.pos)];
    if (cur.removed || cur.next < 0) continue;
    Symbol& right = symbols[size_t(cur.next)];
    auto m = merges_->find(cur.id, right.id);
    if (!m || m->new_id != top.new_id) continue;  // stale entry: a neighbour changed
    cur.id = top.new_id;
    right.removed = true;
    cur.next = right.next;
    if (cur.next >= 0) symbols[size_t(cur.next)].prev = top.pos;
    if (cur.prev >= 0)
      if (auto pm = merges_->find(symbols[size_t(cur.prev)].id, cur.id)) push({pm->rank, cur.prev, pm->new_id});
    if (cur.next >= 0)
      if (auto nm = merges_->find(cur.id, symbols[size_t(cur.next)].id)) push({nm->rank, top.pos, nm->new_id});
  }
  for (const Symbol& s : symbols)
    if (!s.removed) out.push_back(s.id);
}

}  // namespace brisk::text
