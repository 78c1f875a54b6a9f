// safetensors reader: mmap, strict header validation, tensor views, f32 conversion.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "core/fs.h"
#include "core/thread_pool.h"
#include "io/json_util.h"

namespace brisk::io {

using json = nlohmann::json;
static_assert(std::endian::native == std::endian::little, "safetensors is little-endian");

// The bytes of one file: either a read-only private mapping or an owned copy.
namespace {

// Every dtype the safetensors format defines, with its size in bits (sub-byte types exist).
struct DTypeSpec {
  const char* name;
  uint32_t bits;
};
constexpr DTypeSpec kFormatDTypes[] = {
    {"BOOL", 8},  {"U8", 8},       {"I8", 8},       {"F8_E5M2", 8}, {"F8_E4M3", 8},
    {"F8_E8M0", 8}, {"I16", 16},   {"U16", 16},     {"F16", 16},    {"BF16", 16},
    {"I32", 32},  {"U32", 32},     {"F32", 32},     {"F64", 64},    {"I64", 64},
    {"U64", 64},  {"C64", 64},     {"F4", 4},       {"F6_E2M3", 6}, {"F6_E3M2", 6},
};

const DTypeSpec* find_format_dtype(std::string_view name) {
  for (auto& d : kFormatDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

// Reads a non-negative integer that fits int64 (shape dims and offsets).
bool get_u63(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(INT64_MAX)) return false;
    *out = u;
    return true;
  }
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if (i < 0) return false;
    *out = uint64_t(i);
    return true;
  }
  return false;
}

// Parses and checks one tensor entry; buffer_size bounds data_offsets.
TensorInfo parse_entry(const std::string& path, const std::string& name, const json& e,
                       uint64_t buffer_size) {
  auto fail = [&](auto&&... what) {
    throw Error(cat(path, ": tensor \"", name, "\": ", what...));
  };
  if (!e.is_object()) fail("header entry is not an object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!e.contains(key)) fail("missing \"", key, "\"");
  const json& dt = e["dtype"];
  const json& shape = e["shape"];
  const json& offs = e["data_offsets"];
  if (!dt.is_string()) fail("\"dtype\" is not a string");
  if (!shape.is_array()) fail("\"shape\" is not an array");
  if (!offs.is_array() || offs.size() != 2) fail("\"data_offsets\" is not an array of 2 integers");

  TensorInfo t;
  t.name = name;
  t.dtype_name = dt.get<std::string>();
  const DTypeSpec* spec = find_format_dtype(t.dtype_name);
  if (!spec) fail("unknown dtype \"", t.dtype_name, "\"");
  t.supported = dtype_from_name(t.dtype_name, &t.dtype);

  // numel with overflow checks; a zero dimension makes the tensor empty whatever the others.
  uint64_t numel = 1;
  bool overflow = false;
  for (const json& d : shape) {
    uint64_t v;
    if (!get_u63(d, &v)) {
      if (d.is_number_integer() && d.get<int64_t>() < 0) fail("negative dimension ", d.dump(), " in shape");
      fail("shape holds ", d.dump(), ", not a non-negative integer");
    }
    t.shape.push_back(int64_t(v));
    if (__builtin_mul_overflow(numel, v, &numel)) overflow = true;
  }
  if (std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end()) numel = 0, overflow = false;
  uint64_t nbits = 0;
  if (overflow || numel > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, uint64_t(spec->bits), &nbits))
    fail("shape ", shape.dump(), " has too many elements");

  if (!get_u63(offs[0], &t.begin) || !get_u63(offs[1], &t.end))
    fail("\"data_offsets\" ", offs.dump(), " are not non-negative integers");
  if (t.begin > t.end) fail("data_offsets ", offs.dump(), " begin after end");
  if (t.end > buffer_size)
    fail("data_offsets ", offs.dump(), " end past the data buffer (", buffer_size, " bytes)");
  if (nbits % 8 != 0 || t.end - t.begin != nbits / 8)
    fail("data_offsets ", offs.dump(), " span ", t.end - t.begin, " bytes but ", t.dtype_name, shape.dump(),
         " needs ", nbits / 8, (nbits % 8 ? " and a fraction" : ""));
  return t;
}

bool is_aligned(const void* p, size_t to) { return reinterpret_cast<uintptr_t>(p) % to == 0; }

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated at parse time not to overflow (or to hold a 0)
  return std::find(shape.begin(), shape.end(), 0) != shape.end() ? 0 : n;
}

SafeTensorsFile SafeTensorsFile::open(const std::string& path) { return parse(FileBytes::map(path), path); }

SafeTensorsFile SafeTensorsFile::from_bytes(const void* data, size_t size, const std::string& name) {
  return parse(FileBytes::copy(data, size), name);
}

SafeTensorsFile SafeTensorsFile::parse(std::shared_ptr<const FileBytes> storage, const std::string& path) {
  const uint8_t* bytes = storage->data();
  const uint64_t size = storage->size();
  if (size < 8) throw Error(cat(path, ": not a safetensors file (", size, " bytes, shorter than the 8-byte header length)"));
  uint64_t n;
  std::memcpy(&n, bytes, 8);
  if (n > kMaxSafetensorsHeader)
    throw Error(cat(path, ": safetensors header length ", n, " exceeds the limit of ", kMaxSafetensorsHeader, " bytes"));
  if (n > size - 8)
    throw Error(cat(path, ": safetensors header length ", n, " is past the end of the file (", size, " bytes)"));
  std::string_view text(reinterpret_cast<const char*>(bytes + 8), size_t(n));
  if (size_t bad = utf8_invalid_at(text); bad != std::string_view::npos)
    throw Error(cat(path, ": safetensors header is not valid UTF-8 (byte ", bad, " of the header)"));
  if (text.empty() || text[0] != '{')
    throw Error(cat(path, ": safetensors header does not start with '{'"));
  json header = parse_json_strict(text, cat(path, " (safetensors header)"));
  if (!header.is_object()) throw Error(cat(path, ": safetensors header is not a JSON object"));

  SafeTensorsFile f;
  f.path_ = path;
  f.buffer_ = bytes + 8 + n;
  const uint64_t buffer_size = size - 8 - n;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) throw Error(cat(path, ": __metadata__ is not an object"));
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string())
          throw Error(cat(path, ": __metadata__ value of \"", m.key(), "\" is not a string (", m->type_name(), ")"));
        f.metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    f.tensors_.push_back(parse_entry(path, it.key(), *it, buffer_size));
  }

  // The tensors must tile [0, buffer_size): sorted by offset, each starts where the last ended.
  std::sort(f.tensors_.begin(), f.tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : f.tensors_) {
    if (t.begin < at)
      throw Error(cat(path, ": tensor \"", t.name, "\" (bytes ", t.begin, "..", t.end, ") overlaps tensor \"",
                      prev->name, "\" (bytes ", prev->begin, "..", prev->end, ")"));
    if (t.begin > at)
      throw Error(cat(path, ": bytes ", at, "..", t.begin, " of the data buffer belong to no tensor (hole before \"",
                      t.name, "\")"));
    at = t.end;
    prev = &t;
  }
  if (at != buffer_size)
    throw Error(cat(path, ": bytes ", at, "..", buffer_size, " of the data buffer belong to no tensor"));

  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_.emplace(f.tensors_[i].name, i);
  f.storage_ = std::move(storage);
  return f;
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (auto& t : tensors_) out.push_back(t.name);
  return out;
}

const TensorInfo& SafeTensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error(cat("tensor \"", name, "\" not found in ", path_));
  return tensors_[it->second];
}

Tensor SafeTensorsFile::get(const std::string& name) const {
  const TensorInfo& t = info(name);
  if (!t.supported)
    throw Error(cat(path_, ": tensor \"", name, "\" has dtype ", t.dtype_name,
                    ", which brisk does not load (supported: F32, BF16, F16, I32, I64, U8)"));
  if (t.shape.size() > size_t(kMaxDims))
    throw Error(cat(path_, ": tensor \"", name, "\" has ", t.shape.size(), " dimensions (at most ", kMaxDims,
                    " supported)"));
  // The mapping is read-only; Tensor has no const flavour, so the view is const by contract.
  return Tensor(const_cast<uint8_t*>(data_of(t)), t.dtype, Shape::of(t.shape));
}

bool SafeTensorsFile::aligned(const std::string& name) const {
  const TensorInfo& t = info(name);
  const DTypeSpec* spec = find_format_dtype(t.dtype_name);
  size_t elem = std::max<size_t>(1, spec->bits / 8);
  return is_aligned(data_of(t), elem);
}

void SafeTensorsFile::read_bytes(const std::string& name, void* dst) const {
  const TensorInfo& t = info(name);
  if (t.nbytes()) std::memcpy(dst, data_of(t), t.nbytes());
}

void SafeTensorsFile::read_f32(const std::string& name, float* dst) const {
  const TensorInfo& t = info(name);
  if (!t.supported || !dtype_is_float(t.dtype))
    throw Error(cat(path_, ": tensor \"", name, "\" has dtype ", t.dtype_name,
                    ", cannot read it as f32 (F32, BF16 or F16 needed)"));
  const uint8_t* src = data_of(t);
  const DType dt = t.dtype;
  const size_t esize = dtype_size(dt);
  // Chunks are copied through an aligned local buffer: the file's offsets need not be aligned
  // for the dtype, and a typed load from a misaligned address is undefined behaviour.
  constexpr int64_t kChunk = 4096;
  const int64_t n = t.numel();
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  parallel_for(nchunks, 16, [&](int64_t c0, int64_t c1) {
    alignas(64) uint8_t tmp[kChunk * 4];
    for (int64_t c = c0; c < c1; ++c) {
      int64_t i = c * kChunk, m = std::min(kChunk, n - i);
      if (dt == DType::F32) {
        std::memcpy(dst + i, src + i * 4, size_t(m) * 4);
      } else {
        std::memcpy(tmp, src + size_t(i) * esize, size_t(m) * esize);
        convert_floats(tmp, dt, dst + i, DType::F32, size_t(m));
      }
    }
  });
}

// --- ModelWeights -----------------------------------------------------------------------------

namespace {
// A weight_map file name must name a file directly inside the model folder.
bool is_plain_file_name(const std::string& f) {
  return !f.empty() && f != "." && f != ".." && f.find('/') == std::string::npos &&
         f.find('\\') == std::string::npos && f.find('\0') == std::string::npos;
}
}  // namespace

ModelWeights ModelWeights::open(const std::string& dir) {
  if (!dir_exists(dir)) throw Error(cat("model folder ", dir, " does not exist or is not a folder"));
  ModelWeights w;
  w.dir_ = dir;
  const std::string single = path_join(dir, "model.safetensors");
  const std::string index = path_join(dir, "model.safetensors.index.json");
  if (file_exists(single)) {
    w.files_.push_back(SafeTensorsFile::open(single));
    for (auto& t : w.files_[0].tensors()) w.where_.emplace(t.name, 0);
    return w;
  }
  if (!file_exists(index))
    throw Error(cat(dir, " holds no model.safetensors or model.safetensors.index.json"));

  json j = parse_json_strict(read_file(index), index);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw Error(cat(index, ": no \"weight_map\" object"));
  std::map<std::string, size_t> file_ids;  // shard file -> files_ index (sorted: stable order)
  std::vector<std::pair<std::string, std::string>> entries;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it->is_string())
      throw Error(cat(index, ": weight_map entry for \"", it.key(), "\" is not a file name string"));
    std::string file = it->get<std::string>();
    if (!is_plain_file_name(file))
      throw Error(cat(index, ": weight_map names \"", file, "\" for tensor \"", it.key(),
                      "\", which is not a file inside the model folder"));
    file_ids.emplace(file, 0);
    entries.emplace_back(it.key(), std::move(file));
  }
  for (auto& [file, id] : file_ids) {
    std::string p = path_join(dir, file);
    if (!file_exists(p)) throw Error(cat(index, ": shard ", file, " is missing from ", dir));
    id = w.files_.size();
    w.files_.push_back(SafeTensorsFile::open(p));
  }
  for (auto& [name, file] : entries) {
    size_t id = file_ids.at(file);
    if (!w.files_[id].has(name))
      throw Error(cat("tensor \"", name, "\" listed in ", index, " is missing from ", w.files_[id].path()));
    w.where_.emplace(name, id);
  }
  return w;
}

std::vector<std::string> ModelWeights::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (auto& [name, id] : where_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

const SafeTensorsFile& ModelWeights::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error(cat("tensor \"", name, "\" not found in ", dir_));
  return files_[it->second];
}

const TensorInfo& ModelWeights::info(const std::string& name) const { return file_of(name).info(name); }
Tensor ModelWeights::get(const std::string& name) const { return file_of(name).get(name); }
bool ModelWeights::aligned(const std::string& name) const { return file_of(name).aligned(name); }
void ModelWeights::read_f32(const std::string& name, float* dst) const { file_of(name).read_f32(name, dst); }
void ModelWeights::read_bytes(const std::string& name, void* dst) const { file_of(name).read_bytes(name, dst); }

Tensor ModelWeights::get_checked(const std::string& name, const Shape& expected) const {
  const SafeTensorsFile& f = file_of(name);
  const TensorInfo& t = f.info(name);
  if (t.shape != expected.vec()) {
    std::string s = "[";  // like Shape::str, but any rank
    for (size_t i = 0; i < t.shape.size(); ++i) s += cat(i ? ", " : "", t.shape[i]);
    s += "]";
    throw Error(cat("tensor \"", name, "\" has shape ", s, ", expected ", expected.str(), " (in ", f.path(), ")"));
  }
  return f.get(name);
}

}  // namespace brisk::io
