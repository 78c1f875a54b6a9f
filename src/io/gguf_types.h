// ggml tensor types as GGUF files name them: the block layout of every type ggml defines (so a
// file with types brisk cannot compute with still lists and validates), and the mapping to the
// brisk DTypes we read and write.
#pragma once
#include <cstddef>
#include <cstdint>

namespace brisk::io {

struct GGMLTypeTraits {
  uint32_t id;
  const char* name;   // ggml's spelling: "Q4_K", "BF16", ...
  int64_t block_elems;
  size_t block_bytes;
};

// nullptr for ids ggml does not define (including the removed Q4_2/Q4_3 and *_4_4 repacks).
const GGMLTypeTraits* ggml_type_traits(uint32_t ggml_type);

}  // namespace brisk::io
