// GGUF v3 files (llama.cpp's model format): a strict reader (mmap) and a streaming writer.
// Shapes: GGUF stores ne innermost-first; brisk exposes HF order ([out, in] for a weight).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"
#include "io/file_bytes.h"

namespace brisk::io {

enum class GGUFType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12
};

// A metadata value. Integers of any width are held as int64/uint64; arrays are homogeneous.
struct GGUFValue {
  GGUFType type = GGUFType::U32;
  GGUFType elem_type = GGUFType::U32;  // for arrays
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<std::string>, std::vector<double>,
               std::vector<int64_t>>
      v;
  // Convenience constructors for the writer.
  static GGUFValue str(std::string s);
  static GGUFValue u32(uint32_t x);
  static GGUFValue i32(int32_t x);
  static GGUFValue u64(uint64_t x);
  static GGUFValue f32(float x);
  static GGUFValue boolean(bool b);
  static GGUFValue strings(std::vector<std::string> a);
  static GGUFValue f32s(std::vector<double> a);     // written as F32 array
  static GGUFValue i32s(std::vector<int64_t> a);    // written as I32 array
};

struct GGUFTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  std::vector<int64_t> ne;  // innermost first, as in the file
  uint64_t offset = 0;      // relative to the data section
  uint64_t nbytes = 0;
  Shape shape() const;      // HF order (ne reversed)
};

class GGUFFile {
 public:
  // Maps and validates: magic, version 2/3, counts, every string/array length and tensor
  // extent against the file size, alignment, overlaps. Throws brisk::Error naming the file.
  static GGUFFile open(const std::string& path);
  static GGUFFile from_bytes(const void* data, size_t size, const std::string& name);  // tests, fuzzing

  const std::string& path() const { return path_; }
  bool has(const std::string& key) const { return kv_.count(key) != 0; }
  const GGUFValue& get(const std::string& key) const;  // throws naming the key
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;      // any integer width
  double get_float(const std::string& key) const;     // F32/F64 (or integers)
  bool get_bool(const std::string& key) const;
  std::string get_string_or(const std::string& key, const std::string& dflt) const;
  int64_t get_int_or(const std::string& key, int64_t dflt) const;
  double get_float_or(const std::string& key, double dflt) const;
  const std::map<std::string, GGUFValue>& metadata() const { return kv_; }

  const std::vector<GGUFTensorInfo>& tensors() const { return tensors_; }
  bool has_tensor(const std::string& name) const;
  const GGUFTensorInfo& tensor_info(const std::string& name) const;
  // A view in HF order; dtype from the ggml type (throws for unsupported types, naming them).
  Tensor tensor(const std::string& name) const;
  const void* tensor_data(const std::string& name) const;

 private:
  void parse();  // validates storage_ and fills the members below
  std::shared_ptr<const FileBytes> storage_;
  std::string path_;
  const uint8_t* data_ = nullptr;  // start of the tensor data section
  std::map<std::string, GGUFValue> kv_;
  std::vector<GGUFTensorInfo> tensors_;
  std::map<std::string, size_t> index_;
};

class GGUFWriter {
 public:
  explicit GGUFWriter(uint32_t alignment = 32);
  void set(const std::string& key, GGUFValue v);  // insertion order is kept
  // A tensor of `dtype` with HF-order `shape`; `fill` writes its tensor_bytes(dtype, shape)
  // bytes when the data section is streamed (so the whole model never sits in memory).
  void add_tensor(const std::string& name, DType dtype, const Shape& shape, std::function<void(void* dst)> fill);
  // Writes to "<path>.tmp-<pid>" and renames over path when complete. progress(i, n, bytes)
  // is called after each tensor. Refuses to overwrite an existing path unless force.
  void write(const std::string& path, bool force = false,
             const std::function<void(size_t done, size_t total, uint64_t bytes)>& progress = {});

 private:
  uint32_t alignment_;
  std::vector<std::pair<std::string, GGUFValue>> kv_;
  struct Pending {
    std::string name;
    DType dtype;
    Shape shape;
    std::function<void(void*)> fill;
  };
  std::vector<Pending> tensors_;
};

}  // namespace brisk::io
