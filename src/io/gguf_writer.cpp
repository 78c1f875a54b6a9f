// GGUF writer: v3 header (kvs in insertion order, tensor infos), then the data section
// streamed one tensor at a time through each tensor's fill callback, so a many-GB model never
// sits in memory. The file appears under its final name only when complete.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "backend/quant.h"
#include "core/error.h"
#include "io/gguf.h"

namespace brisk::io {

namespace {

constexpr uint32_t kGGUFMagic = 0x46554747;
constexpr uint32_t kGGUFVersion = 3;
constexpr size_t kGGMLMaxName = 64;  // ggml's GGML_MAX_NAME: llama.cpp refuses longer names

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Serialises the header into memory (metadata is small next to the weights: a 150k-token
// vocabulary is a few MB).
class HeaderBuilder {
 public:
  template <typename T>
  void put(T v) {
    const char* p = reinterpret_cast<const char*>(&v);
    out.append(p, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out += s;
  }
  void put_scalar(GGUFType t, const GGUFValue& v, const std::string& key);
  void put_value(const std::string& key, const GGUFValue& v);
  std::string out;
};

[[noreturn]] void bad_value(const std::string& key) {
  throw Error(cat("GGUF key '", key, "': value does not match its declared type"));
}

template <typename T>
T get_as(const GGUFValue& v, const std::string& key) {
  if (auto* u = std::get_if<uint64_t>(&v.v)) return T(*u);
  if (auto* i = std::get_if<int64_t>(&v.v)) return T(*i);
  if (auto* d = std::get_if<double>(&v.v)) return T(*d);
  if (auto* b = std::get_if<bool>(&v.v)) return T(*b);
  bad_value(key);
}

void HeaderBuilder::put_scalar(GGUFType t, const GGUFValue& v, const std::string& key) {
  switch (t) {
    case GGUFType::U8: put(get_as<uint8_t>(v, key)); break;
    case GGUFType::I8: put(get_as<int8_t>(v, key)); break;
    case GGUFType::U16: put(get_as<uint16_t>(v, key)); break;
    case GGUFType::I16: put(get_as<int16_t>(v, key)); break;
    case GGUFType::U32: put(get_as<uint32_t>(v, key)); break;
    case GGUFType::I32: put(get_as<int32_t>(v, key)); break;
    case GGUFType::F32: put(get_as<float>(v, key)); break;
    case GGUFType::BOOL: put(uint8_t(get_as<bool>(v, key))); break;
    case GGUFType::U64: put(get_as<uint64_t>(v, key)); break;
    case GGUFType::I64: put(get_as<int64_t>(v, key)); break;
    case GGUFType::F64: put(get_as<double>(v, key)); break;
    case GGUFType::STRING: {
      auto* s = std::get_if<std::string>(&v.v);
      if (!s) bad_value(key);
      put_string(*s);
      break;
    }
    case GGUFType::ARRAY: bad_value(key);
  }
}

void HeaderBuilder::put_value(const std::string& key, const GGUFValue& v) {
  if (uint32_t(v.type) > uint32_t(GGUFType::F64)) bad_value(key);
  put<uint32_t>(uint32_t(v.type));
  if (v.type != GGUFType::ARRAY) return put_scalar(v.type, v, key);
  GGUFType e = v.elem_type;
  if (uint32_t(e) > uint32_t(GGUFType::F64) || e == GGUFType::ARRAY) bad_value(key);
  put<uint32_t>(uint32_t(e));
  // One element at a time through a scalar GGUFValue keeps the width conversions in one place.
  GGUFValue elem;
  elem.type = e;
  if (e == GGUFType::STRING) {
    auto* a = std::get_if<std::vector<std::string>>(&v.v);
    if (!a) bad_value(key);
    put<uint64_t>(a->size());
    for (const std::string& s : *a) put_string(s);
  } else if (auto* f = std::get_if<std::vector<double>>(&v.v)) {
    if (e != GGUFType::F32 && e != GGUFType::F64) bad_value(key);
    put<uint64_t>(f->size());
    for (double x : *f) e == GGUFType::F32 ? put(float(x)) : put(x);
  } else if (auto* n = std::get_if<std::vector<int64_t>>(&v.v)) {
    if (e == GGUFType::F32 || e == GGUFType::F64) bad_value(key);
    put<uint64_t>(n->size());
    for (int64_t x : *n) {
      elem.v = x;
      put_scalar(e, elem, key);
    }
  } else {
    bad_value(key);
  }
}

// The temp file of one write: removed unless committed.
class TempFile {
 public:
  TempFile(const std::string& path) : path_(path), tmp_(cat(path, ".tmp-", ::getpid())) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(cat("cannot write ", path_, ": ", std::strerror(errno)));
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t(1) << 30));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail(errno);
      p += w;
      n -= size_t(w);
    }
  }
  void commit() {
    if (::fsync(fd_) != 0) fail(errno);
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(errno);
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail(errno);
    committed_ = true;
  }

 private:
  [[noreturn]] void fail(int e) {
    if (e == ENOSPC || e == EDQUOT) throw Error(cat("disk full writing ", path_));
    throw Error(cat("cannot write ", path_, ": ", std::strerror(e)));
  }
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

GGUFWriter::GGUFWriter(uint32_t alignment) : alignment_(alignment) {
  BRISK_CHECK(alignment > 0 && std::has_single_bit(alignment), "GGUF alignment ", alignment,
              " is not a power of two");
}

void GGUFWriter::set(const std::string& key, GGUFValue v) {
  for (auto& kv : kv_)
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

void GGUFWriter::add_tensor(const std::string& name, DType dtype, const Shape& shape,
                            std::function<void(void* dst)> fill) {
  BRISK_CHECK(!name.empty() && name.size() < kGGMLMaxName, "GGUF tensor name '", name, "' must be 1 to ",
              kGGMLMaxName - 1, " bytes (llama.cpp's limit)");
  for (const Pending& t : tensors_) BRISK_CHECK(t.name != name, "duplicate GGUF tensor '", name, "'");
  BRISK_CHECK(shape.ndim >= 1 && shape.ndim <= 4, "GGUF tensor '", name, "': ", shape.ndim, " dimensions");
  for (int i = 0; i < shape.ndim; ++i)
    BRISK_CHECK(shape[i] > 0, "GGUF tensor '", name, "': shape ", shape.str(), " has an empty dimension");
  (void)quant::ggml_type_of(dtype);  // throws for dtypes GGUF cannot hold
  int64_t block = dtype_block_elems(dtype);
  BRISK_CHECK(shape[shape.ndim - 1] % block == 0, "GGUF tensor '", name, "': row length ", shape[shape.ndim - 1],
              " is not a multiple of the ", dtype_name(dtype), " block (", block, ")");
  tensors_.push_back({name, dtype, shape, std::move(fill)});
}

void GGUFWriter::write(const std::string& path, bool force,
                       const std::function<void(size_t, size_t, uint64_t)>& progress) {
  struct stat st;
  if (!force && ::stat(path.c_str(), &st) == 0) throw Error(cat(path, " exists (use --force)"));

  // A non-default alignment must be in the file, or readers would assume 32.
  std::vector<std::pair<std::string, GGUFValue>> kvs = kv_;
  bool has_alignment = std::any_of(kvs.begin(), kvs.end(), [](auto& kv) { return kv.first == "general.alignment"; });
  if (!has_alignment && alignment_ != 32) kvs.emplace_back("general.alignment", GGUFValue::u32(alignment_));
  for (auto& kv : kvs)
    if (kv.first == "general.alignment") {
      uint64_t a = 0;
      if (auto* u = std::get_if<uint64_t>(&kv.second.v)) a = *u;
      BRISK_CHECK(a == alignment_, "general.alignment (", a, ") differs from the writer's alignment ", alignment_);
    }

  HeaderBuilder h;
  h.put<uint32_t>(kGGUFMagic);
  h.put<uint32_t>(kGGUFVersion);
  h.put<uint64_t>(tensors_.size());
  h.put<uint64_t>(kvs.size());
  for (auto& [key, v] : kvs) {
    h.put_string(key);
    h.put_value(key, v);
  }
  std::vector<uint64_t> sizes;
  uint64_t offset = 0, max_size = 0;
  for (const Pending& t : tensors_) {
    uint64_t n = tensor_bytes(t.dtype, t.shape);
    h.put_string(t.name);
    h.put<uint32_t>(uint32_t(t.shape.ndim));
    for (int i = t.shape.ndim - 1; i >= 0; --i) h.put<uint64_t>(uint64_t(t.shape[i]));  // ne: innermost first
    h.put<uint32_t>(quant::ggml_type_of(t.dtype));
    h.put<uint64_t>(offset);
    sizes.push_back(n);
    max_size = std::max(max_size, n);
    offset = align_up(offset + n, alignment_);
  }
  h.out.resize(size_t(align_up(h.out.size(), alignment_)), '\0');

  TempFile file(path);
  file.write(h.out.data(), h.out.size());
  // One buffer, sized for the largest tensor, reused for all of them.
  Buffer buf(static_cast<size_t>(max_size));
  const std::string zeros(alignment_, '\0');
  uint64_t written = h.out.size();
  for (size_t i = 0; i < tensors_.size(); ++i) {
    std::memset(buf.data(), 0, size_t(sizes[i]));
    tensors_[i].fill(buf.data());
    file.write(buf.data(), size_t(sizes[i]));
    uint64_t pad = align_up(sizes[i], alignment_) - sizes[i];
    // The last tensor needs no padding after it; llama.cpp's writer pads it anyway, and so do we
    // so every file's size is a multiple of the alignment.
    file.write(zeros.data(), size_t(pad));
    written += sizes[i] + pad;
    if (progress) progress(i + 1, tensors_.size(), written);
  }
  file.commit();
}

}  // namespace brisk::io
