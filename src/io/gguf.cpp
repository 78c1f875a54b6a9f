// GGUF reader: mmap, strict validation of every length and offset against the file size (a
// lying header never causes a large allocation or a read past the end), typed accessors.
#include "io/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>

#include "backend/quant.h"
#include "core/error.h"
#include "io/gguf_types.h"

namespace brisk::io {

static_assert(std::endian::native == std::endian::little, "GGUF is read as little-endian");

constexpr uint32_t kGGUFMagic = 0x46554747;  // "GGUF" as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;

// The bytes of one file: a read-only private mapping or an owned copy.
// ---- values ---------------------------------------------------------------------------------

GGUFValue GGUFValue::str(std::string s) { return {GGUFType::STRING, GGUFType::U32, std::move(s)}; }
GGUFValue GGUFValue::u32(uint32_t x) { return {GGUFType::U32, GGUFType::U32, uint64_t(x)}; }
GGUFValue GGUFValue::i32(int32_t x) { return {GGUFType::I32, GGUFType::U32, int64_t(x)}; }
GGUFValue GGUFValue::u64(uint64_t x) { return {GGUFType::U64, GGUFType::U32, x}; }
GGUFValue GGUFValue::f32(float x) { return {GGUFType::F32, GGUFType::U32, double(x)}; }
GGUFValue GGUFValue::boolean(bool b) { return {GGUFType::BOOL, GGUFType::U32, b}; }
GGUFValue GGUFValue::strings(std::vector<std::string> a) { return {GGUFType::ARRAY, GGUFType::STRING, std::move(a)}; }
GGUFValue GGUFValue::f32s(std::vector<double> a) { return {GGUFType::ARRAY, GGUFType::F32, std::move(a)}; }
GGUFValue GGUFValue::i32s(std::vector<int64_t> a) { return {GGUFType::ARRAY, GGUFType::I32, std::move(a)}; }

Shape GGUFTensorInfo::shape() const {
  std::vector<int64_t> hf(ne.rbegin(), ne.rend());
  return Shape::of(hf);
}

namespace {

const char* type_name(GGUFType t) {
  switch (t) {
    case GGUFType::U8: return "u8";
    case GGUFType::I8: return "i8";
    case GGUFType::U16: return "u16";
    case GGUFType::I16: return "i16";
    case GGUFType::U32: return "u32";
    case GGUFType::I32: return "i32";
    case GGUFType::F32: return "f32";
    case GGUFType::BOOL: return "bool";
    case GGUFType::STRING: return "string";
    case GGUFType::ARRAY: return "array";
    case GGUFType::U64: return "u64";
    case GGUFType::I64: return "i64";
    case GGUFType::F64: return "f64";
  }
  return "?";
}

// Bytes of one scalar of type t in the file; 0 for STRING/ARRAY (variable) and unknown types.
size_t scalar_size(GGUFType t) {
  switch (t) {
    case GGUFType::U8: case GGUFType::I8: case GGUFType::BOOL: return 1;
    case GGUFType::U16: case GGUFType::I16: return 2;
    case GGUFType::U32: case GGUFType::I32: case GGUFType::F32: return 4;
    case GGUFType::U64: case GGUFType::I64: case GGUFType::F64: return 8;
    case GGUFType::STRING: case GGUFType::ARRAY: return 0;
  }
  return 0;
}

bool is_signed_int(GGUFType t) {
  return t == GGUFType::I8 || t == GGUFType::I16 || t == GGUFType::I32 || t == GGUFType::I64;
}
bool is_unsigned_int(GGUFType t) {
  return t == GGUFType::U8 || t == GGUFType::U16 || t == GGUFType::U32 || t == GGUFType::U64;
}

// Reads the header front to back; every read is checked against the bytes left, and every
// error names the file and the byte offset where the problem is.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& name) : p_(data), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(cat(name_, ": invalid GGUF at byte ", pos_, ": ", what));
  }

  void need(size_t n, const char* what) {
    if (n > left()) fail(cat("truncated: ", what, " needs ", n, " bytes, ", left(), " left"));
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    uint64_t n = read<uint64_t>(what);
    if (n > left()) fail(cat(what, " length ", n, " exceeds the ", left(), " bytes left"));
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
};

// One scalar of type t (not STRING/ARRAY) as an integer / float / bool.
int64_t read_signed(Cursor& c, GGUFType t) {
  switch (t) {
    case GGUFType::I8: return c.read<int8_t>("i8");
    case GGUFType::I16: return c.read<int16_t>("i16");
    case GGUFType::I32: return c.read<int32_t>("i32");
    default: return c.read<int64_t>("i64");
  }
}
uint64_t read_unsigned(Cursor& c, GGUFType t) {
  switch (t) {
    case GGUFType::U8: return c.read<uint8_t>("u8");
    case GGUFType::U16: return c.read<uint16_t>("u16");
    case GGUFType::U32: return c.read<uint32_t>("u32");
    default: return c.read<uint64_t>("u64");
  }
}
double read_float(Cursor& c, GGUFType t) {
  if (t == GGUFType::F32) return c.read<float>("f32");
  return c.read<double>("f64");
}
bool read_bool(Cursor& c, const std::string& key) {
  uint8_t b = c.read<uint8_t>("bool");
  if (b > 1) c.fail(cat("key '", key, "': bool value ", int(b), " is neither 0 nor 1"));
  return b != 0;
}

GGUFType read_type(Cursor& c, const std::string& key, const char* what) {
  uint32_t t = c.read<uint32_t>(what);
  if (t > uint32_t(GGUFType::F64)) c.fail(cat("key '", key, "': unknown value type ", t));
  return GGUFType(t);
}

GGUFValue read_value(Cursor& c, GGUFType type, const std::string& key) {
  GGUFValue v;
  v.type = type;
  if (is_unsigned_int(type)) v.v = read_unsigned(c, type);
  else if (is_signed_int(type)) v.v = read_signed(c, type);
  else if (type == GGUFType::F32 || type == GGUFType::F64) v.v = read_float(c, type);
  else if (type == GGUFType::BOOL) v.v = read_bool(c, key);
  else if (type == GGUFType::STRING) v.v = c.read_string("string value");
  else {
    GGUFType elem = read_type(c, key, "array element type");
    if (elem == GGUFType::ARRAY) c.fail(cat("key '", key, "': nested arrays are not supported"));
    v.elem_type = elem;
    uint64_t n = c.read<uint64_t>("array length");
    // Every element takes at least this many bytes, so a lying count fails here, before any
    // allocation proportional to it.
    size_t min_elem = elem == GGUFType::STRING ? 8 : scalar_size(elem);
    if (n > c.left() / min_elem)
      c.fail(cat("key '", key, "': array of ", n, " ", type_name(elem), " does not fit in the ", c.left(),
                 " bytes left"));
    if (elem == GGUFType::STRING) {
      std::vector<std::string> a(static_cast<size_t>(n));
      for (auto& s : a) s = c.read_string("string array element");
      v.v = std::move(a);
    } else if (elem == GGUFType::F32 || elem == GGUFType::F64) {
      std::vector<double> a(static_cast<size_t>(n));
      for (auto& x : a) x = read_float(c, elem);
      v.v = std::move(a);
    } else {
      std::vector<int64_t> a(static_cast<size_t>(n));
      for (auto& x : a) {
        if (elem == GGUFType::BOOL) x = read_bool(c, key);
        else if (is_signed_int(elem)) x = read_signed(c, elem);
        else x = int64_t(read_unsigned(c, elem));  // u64 above INT64_MAX wraps; no tokenizer key has one
      }
      v.v = std::move(a);
    }
  }
  return v;
}

// An integer value of any width as u64 (for general.alignment); nullopt for other types or
// negative values.
bool value_as_u64(const GGUFValue& v, uint64_t* out) {
  if (auto* u = std::get_if<uint64_t>(&v.v)) {
    *out = *u;
    return true;
  }
  if (auto* i = std::get_if<int64_t>(&v.v); i && v.type != GGUFType::ARRAY && *i >= 0) {
    *out = uint64_t(*i);
    return true;
  }
  return false;
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

// ---- parsing --------------------------------------------------------------------------------

GGUFFile GGUFFile::open(const std::string& path) {
  GGUFFile f;
  f.storage_ = FileBytes::map(path);
  f.path_ = path;
  f.parse();
  return f;
}

GGUFFile GGUFFile::from_bytes(const void* data, size_t size, const std::string& name) {
  GGUFFile f;
  f.storage_ = FileBytes::copy(data, size);
  f.path_ = name;
  f.parse();
  return f;
}

void GGUFFile::parse() {
  const uint8_t* bytes = storage_->data();
  const size_t size = storage_->size();
  Cursor c(bytes, size, path_);

  if (size < 4) throw Error(cat(path_, ": not a GGUF file (", size, " bytes)"));
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kGGUFMagic) throw Error(cat(path_, ": not a GGUF file (bad magic)"));
  uint32_t version = c.read<uint32_t>("version");
  if (version == 1) throw Error(cat(path_, ": GGUF version 1 is not supported (re-convert with a current llama.cpp)"));
  if (version != 2 && version != 3) {
    if (version == 0x02000000u || version == 0x03000000u)
      throw Error(cat(path_, ": big-endian GGUF files are not supported"));
    throw Error(cat(path_, ": unsupported GGUF version ", version, " (expected 2 or 3)"));
  }
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Smallest encodings: a kv is key length (8) + key (>= 0) + type (4) + a 1-byte value; a
  // tensor info is name length (8) + n_dims (4) + one ne (8) + type (4) + offset (8).
  if (n_kv > c.left() / 13) c.fail(cat("metadata count ", n_kv, " cannot fit in a ", size, "-byte file"));

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key");
    GGUFType type = read_type(c, key, "value type");
    GGUFValue v = read_value(c, type, key);
    if (!kv_.emplace(key, std::move(v)).second) c.fail(cat("duplicate key '", key, "'"));
  }

  if (n_tensors > c.left() / 32) c.fail(cat("tensor count ", n_tensors, " cannot fit in a ", size, "-byte file"));

  uint64_t alignment = kDefaultAlignment;
  if (auto it = kv_.find("general.alignment"); it != kv_.end()) {
    if (!value_as_u64(it->second, &alignment) || alignment == 0 || !std::has_single_bit(alignment) ||
        alignment > (uint64_t(1) << 30))
      throw Error(cat(path_, ": general.alignment must be a power of two integer (up to 2^30)"));
  }

  tensors_.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GGUFTensorInfo t;
    t.name = c.read_string("tensor name");
    uint32_t n_dims = c.read<uint32_t>("tensor n_dims");
    if (n_dims < 1 || n_dims > 4) c.fail(cat("tensor '", t.name, "': n_dims ", n_dims, " (expected 1 to 4)"));
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = c.read<uint64_t>("tensor dimension");
      if (ne == 0 || ne > uint64_t(std::numeric_limits<int64_t>::max()))
        c.fail(cat("tensor '", t.name, "': dimension ", d, " is ", int64_t(ne)));
      if (numel > uint64_t(std::numeric_limits<int64_t>::max()) / ne)
        c.fail(cat("tensor '", t.name, "': element count overflows"));
      numel *= ne;
      t.ne.push_back(int64_t(ne));
    }
    t.ggml_type = c.read<uint32_t>("tensor type");
    t.offset = c.read<uint64_t>("tensor offset");
    // Types ggml itself does not define have no known size, so the extent cannot be checked.
    const GGMLTypeTraits* tt = ggml_type_traits(t.ggml_type);
    if (!tt) c.fail(cat("tensor '", t.name, "': unknown ggml type ", t.ggml_type));
    if (t.ne[0] % tt->block_elems != 0)
      c.fail(cat("tensor '", t.name, "': row length ", t.ne[0], " is not a multiple of the ", tt->name,
                 " block (", tt->block_elems, ")"));
    uint64_t blocks = numel / uint64_t(tt->block_elems);
    if (blocks > std::numeric_limits<uint64_t>::max() / tt->block_bytes)
      c.fail(cat("tensor '", t.name, "': byte size overflows"));
    t.nbytes = blocks * tt->block_bytes;
    if (t.offset % alignment != 0)
      c.fail(cat("tensor '", t.name, "': offset ", t.offset, " is not a multiple of the alignment ", alignment));
    if (!index_.emplace(t.name, tensors_.size()).second) c.fail(cat("duplicate tensor name '", t.name, "'"));
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment after the tensor infos.
  uint64_t data_start = align_up(c.pos(), alignment);
  uint64_t data_size = data_start <= size ? size - data_start : 0;
  if (!tensors_.empty() && data_start > size)
    throw Error(cat(path_, ": invalid GGUF: tensor data section starts at byte ", data_start, ", past the end (",
                    size, " bytes)"));
  for (const GGUFTensorInfo& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      throw Error(cat(path_, ": invalid GGUF: tensor '", t.name, "' (", t.nbytes, " bytes at data offset ", t.offset,
                      ") extends past the end of the file (data section is ", data_size, " bytes)"));
  }
  std::vector<const GGUFTensorInfo*> by_offset;
  for (const GGUFTensorInfo& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GGUFTensorInfo* a, const GGUFTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GGUFTensorInfo& a = *by_offset[i - 1];
    const GGUFTensorInfo& b = *by_offset[i];
    if (a.offset + a.nbytes > b.offset)
      throw Error(cat(path_, ": invalid GGUF: tensors '", a.name, "' and '", b.name, "' overlap"));
  }
  data_ = bytes + std::min<uint64_t>(data_start, size);
}

// ---- accessors ------------------------------------------------------------------------------

const GGUFValue& GGUFFile::get(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) throw Error(cat(path_, ": missing GGUF key '", key, "'"));
  return it->second;
}

std::string GGUFFile::get_string(const std::string& key) const {
  const GGUFValue& v = get(key);
  if (v.type != GGUFType::STRING) throw Error(cat(path_, ": GGUF key '", key, "' is ", type_name(v.type), ", not a string"));
  return std::get<std::string>(v.v);
}

int64_t GGUFFile::get_int(const std::string& key) const {
  const GGUFValue& v = get(key);
  if (is_signed_int(v.type)) return std::get<int64_t>(v.v);
  if (is_unsigned_int(v.type)) {
    uint64_t u = std::get<uint64_t>(v.v);
    if (u > uint64_t(std::numeric_limits<int64_t>::max()))
      throw Error(cat(path_, ": GGUF key '", key, "' value ", u, " is out of range"));
    return int64_t(u);
  }
  throw Error(cat(path_, ": GGUF key '", key, "' is ", type_name(v.type), ", not an integer"));
}

double GGUFFile::get_float(const std::string& key) const {
  const GGUFValue& v = get(key);
  if (v.type == GGUFType::F32 || v.type == GGUFType::F64) return std::get<double>(v.v);
  if (is_signed_int(v.type)) return double(std::get<int64_t>(v.v));
  if (is_unsigned_int(v.type)) return double(std::get<uint64_t>(v.v));
  throw Error(cat(path_, ": GGUF key '", key, "' is ", type_name(v.type), ", not a number"));
}

bool GGUFFile::get_bool(const std::string& key) const {
  const GGUFValue& v = get(key);
  if (v.type != GGUFType::BOOL) throw Error(cat(path_, ": GGUF key '", key, "' is ", type_name(v.type), ", not a bool"));
  return std::get<bool>(v.v);
}

std::string GGUFFile::get_string_or(const std::string& key, const std::string& dflt) const {
  return has(key) ? get_string(key) : dflt;
}
int64_t GGUFFile::get_int_or(const std::string& key, int64_t dflt) const { return has(key) ? get_int(key) : dflt; }
double GGUFFile::get_float_or(const std::string& key, double dflt) const { return has(key) ? get_float(key) : dflt; }

bool GGUFFile::has_tensor(const std::string& name) const { return index_.count(name) != 0; }

const GGUFTensorInfo& GGUFFile::tensor_info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error(cat(path_, ": no tensor '", name, "' in the GGUF file"));
  return tensors_[it->second];
}

const void* GGUFFile::tensor_data(const std::string& name) const { return data_ + tensor_info(name).offset; }

Tensor GGUFFile::tensor(const std::string& name) const {
  const GGUFTensorInfo& t = tensor_info(name);
  DType dtype;
  if (!quant::dtype_of_ggml(t.ggml_type, &dtype))
    throw Error(cat(path_, ": tensor '", name, "' has ggml type ", quant::ggml_type_name(t.ggml_type), " (id ",
                    t.ggml_type, "), which brisk does not support"));
  // The storage outlives views only while this GGUFFile (or a copy) is alive, as for safetensors.
  return Tensor(const_cast<uint8_t*>(data_ + t.offset), dtype, t.shape());
}

}  // namespace brisk::io
