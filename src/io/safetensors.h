// safetensors: reading (memory-mapped, strictly validated) and writing (atomic, streamed).
//
// Format (REFERENCE.md §1): u64 little-endian header length N, N bytes of UTF-8 JSON (possibly
// right-padded with spaces), then the data buffer. The header maps tensor names to
// {"dtype", "shape", "data_offsets": [begin, end)} relative to the buffer start, plus an
// optional "__metadata__" map of string to string. The tensors must tile the buffer exactly:
// no overlaps, no holes, nothing left over.
//
// Lifetime: the Tensor views that get() returns point into a read-only mapping. The mapping
// lives as long as any SafeTensorsFile / ModelWeights that shares it (copies share it), or as
// long as a caller holds keepalive(). Views are read-only memory: writing through one faults.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/file_bytes.h"

namespace brisk::io {

// The reference reader's limit: headers above this are rejected before parsing.
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

// One header entry. Tensors of dtypes brisk does not handle (F64, I8, BOOL, F8_*, ...) are
// valid in a file; they are listed here with supported = false and get() refuses them.
struct TensorInfo {
  std::string name;
  std::string dtype_name;      // as written in the header ("BF16", "F64", ...)
  bool supported = false;      // dtype is one of brisk::DType
  DType dtype = DType::U8;     // meaningful only when supported
  std::vector<int64_t> shape;  // any rank; get() needs rank <= kMaxDims
  uint64_t begin = 0, end = 0; // byte range in the data buffer
  int64_t numel() const;       // product of shape (validated not to overflow)
  uint64_t nbytes() const { return end - begin; }
};

class SafeTensorsFile {
 public:
  SafeTensorsFile() = default;

  // Maps `path` read-only and validates its header. Throws brisk::Error naming the file.
  static SafeTensorsFile open(const std::string& path);
  // Parses file bytes held in memory (copied into an owned, 64-byte-aligned buffer).
  // `name` stands in for the path in error messages. Used by tests and the fuzzer.
  static SafeTensorsFile from_bytes(const void* data, size_t size, const std::string& name);

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  std::vector<std::string> names() const;  // in data-offset order
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Throws "tensor X not found in FILE".
  const TensorInfo& info(const std::string& name) const;

  // A view into the mapping. Throws for unknown names, unsupported dtypes and rank > 4.
  // The data may be misaligned for the dtype (offsets are arbitrary): check aligned() before
  // any typed load, or use read_f32 / read_bytes, which never do misaligned loads.
  Tensor get(const std::string& name) const;
  bool aligned(const std::string& name) const;
  // Copies the tensor's raw bytes (info(name).nbytes() of them) into dst.
  void read_bytes(const std::string& name, void* dst) const;
  // Converts an F32/BF16/F16 tensor to f32 into dst (numel floats). Throws for other dtypes.
  void read_f32(const std::string& name, float* dst) const;

  // Holds the mapping alive independently of this object.
  std::shared_ptr<const void> keepalive() const { return storage_; }

 private:
  static SafeTensorsFile parse(std::shared_ptr<const FileBytes> storage, const std::string& path);
  const uint8_t* data_of(const TensorInfo& t) const { return buffer_ + t.begin; }

  std::string path_;
  std::shared_ptr<const FileBytes> storage_;
  const uint8_t* buffer_ = nullptr;  // start of the data buffer (after the header)
  std::vector<TensorInfo> tensors_;  // sorted by data offset
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A Hugging Face model folder's weights: `model.safetensors`, or the shards named by
// `model.safetensors.index.json` (as transformers, the single file wins when both exist).
class ModelWeights {
 public:
  // Throws brisk::Error naming the folder / index / shard / tensor on any problem.
  static ModelWeights open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  std::vector<std::string> names() const;  // sorted
  const TensorInfo& info(const std::string& name) const;
  // Throws "tensor X not found in DIR".
  Tensor get(const std::string& name) const;
  // get() plus a shape check: "tensor X has shape [a, b], expected [c, d] (in FILE)".
  Tensor get_checked(const std::string& name, const Shape& expected) const;
  bool aligned(const std::string& name) const;
  void read_f32(const std::string& name, float* dst) const;
  void read_bytes(const std::string& name, void* dst) const;
  // Which file holds the tensor (for error messages of callers).
  const SafeTensorsFile& file_of(const std::string& name) const;
  const std::vector<SafeTensorsFile>& files() const { return files_; }

 private:
  std::string dir_;
  std::vector<SafeTensorsFile> files_;
  std::unordered_map<std::string, size_t> where_;  // tensor name -> files_ index
};

// Writes CPU, contiguous tensors to `path` atomically (temp file, fsync, rename). The header is
// space-padded so the data starts 8-byte aligned; tensors are laid out in the given order, each
// starting where the previous ended. Data is streamed from the tensors, never copied whole.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes `model.safetensors` when everything fits in one shard of max_shard_bytes, otherwise
// `model-0000K-of-0000N.safetensors` shards (tensors in the given order, greedily packed; a
// tensor larger than max_shard_bytes gets a shard of its own) plus
// `model.safetensors.index.json`. Removes a stale file of the other layout so that the folder
// always loads what was just written. Creates `dir` if needed.
void write_safetensors_sharded(const std::string& dir, const NamedTensors& tensors,
                               uint64_t max_shard_bytes);

}  // namespace brisk::io
