// safetensors writer: single files and sharded folders (with model.safetensors.index.json).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/error.h"
#include "core/fs.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "io/safetensors.h"

namespace brisk::io {

using json = nlohmann::json;

namespace {

// The header is JSON, so every name and metadata string must be valid UTF-8.
void check_utf8(const std::string& path, const char* what, const std::string& s) {
  BRISK_CHECK(utf8_invalid_at(s) == std::string::npos, path, ": ", what, " is not valid UTF-8");
}

void check_writable(const std::string& path, const NamedTensors& tensors,
                    const std::map<std::string, std::string>& metadata) {
  for (auto& [k, v] : metadata) {
    check_utf8(path, "a metadata key", k);
    check_utf8(path, "a metadata value", v);
  }
  std::unordered_set<std::string> seen;
  for (auto& [name, t] : tensors) {
    BRISK_CHECK(!name.empty(), path, ": cannot write a tensor with an empty name");
    check_utf8(path, "a tensor name", name);
    BRISK_CHECK(name != "__metadata__", path, ": \"__metadata__\" is reserved, not a tensor name");
    BRISK_CHECK(seen.insert(name).second, path, ": tensor \"", name, "\" given twice");
    BRISK_CHECK(t.device == Device::CPU, path, ": tensor \"", name, "\" is on ", device_name(t.device),
                ", copy it to the CPU before writing");
    BRISK_CHECK(t.is_contiguous(), path, ": tensor \"", name, "\" is not contiguous");
    BRISK_CHECK(t.numel() == 0 || t.data != nullptr, path, ": tensor \"", name, "\" has no data");
  }
}

uint64_t bytes_of(const Tensor& t) { return uint64_t(t.numel()) * dtype_size(t.dtype); }

}  // namespace

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  check_writable(path, tensors, metadata);
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (auto& [name, t] : tensors) {
    uint64_t n = bytes_of(t);
    header[name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape.vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  // Pad with spaces (the format allows it) so the buffer starts 8-byte aligned in the file.
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t len = text.size();  // little-endian on every host we build for (static_assert in reader)

  AtomicFile out(path);
  out.write(&len, 8);
  out.write(text.data(), text.size());
  for (auto& [name, t] : tensors)
    if (uint64_t n = bytes_of(t)) out.write(t.data, size_t(n));
  out.commit();
}

void write_safetensors_sharded(const std::string& dir, const NamedTensors& tensors, uint64_t max_shard_bytes) {
  BRISK_CHECK(max_shard_bytes > 0, "max shard size must be positive");
  check_writable(dir, tensors, {});
  make_dirs(dir);
  const std::string single = path_join(dir, "model.safetensors");
  const std::string index = path_join(dir, "model.safetensors.index.json");

  // Greedy packing in the given order: a new shard starts when the next tensor does not fit.
  std::vector<NamedTensors> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (auto& nt : tensors) {
    uint64_t n = bytes_of(nt.second);
    if (!shards.back().empty() && in_shard + n > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(nt);
    in_shard += n;
    total += n;
  }

  if (shards.size() == 1) {
    write_safetensors(single, tensors);
    std::remove(index.c_str());  // a stale index would describe other shards
    return;
  }
  json weight_map = json::object();
  for (size_t k = 0; k < shards.size(); ++k) {
    char file[64];
    std::snprintf(file, sizeof file, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    write_safetensors(path_join(dir, file), shards[k]);
    for (auto& [name, t] : shards[k]) weight_map[name] = file;
  }
  json j = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_file_atomic(index, j.dump(2) + "\n");
  // transformers (and ModelWeights) prefer model.safetensors over the index: drop a stale one.
  std::remove(single.c_str());
}

}  // namespace brisk::io
