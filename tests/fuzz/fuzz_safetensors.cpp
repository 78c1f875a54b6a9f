// libFuzzer target: arbitrary bytes as a safetensors file. Parsing may reject the input with a
// brisk::Error; anything else (crash, sanitizer report, leak, hang) is a bug. For accepted files
// every tensor is read through each API, so the validated offsets are exercised for real.
#include <cstdint>
#include <cstring>
#include <vector>

#include "io/safetensors.h"

using namespace brisk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  io::SafeTensorsFile f;
  try {
    f = io::SafeTensorsFile::from_bytes(data, size, "fuzz.safetensors");
  } catch (const Error&) {
    return 0;
  }
  std::vector<uint8_t> bytes;
  std::vector<float> floats;
  for (const io::TensorInfo& t : f.tensors()) {
    (void)f.aligned(t.name);
    bytes.resize(t.nbytes());
    f.read_bytes(t.name, bytes.data());
    try {
      Tensor v = f.get(t.name);
      // The view must cover exactly the bytes read above.
      if (v.nbytes() != t.nbytes() || (t.nbytes() && std::memcmp(v.data, bytes.data(), t.nbytes()) != 0))
        __builtin_trap();
      floats.resize(size_t(t.numel()));
      if (dtype_is_float(v.dtype)) f.read_f32(t.name, floats.data());
    } catch (const Error&) {
      // unsupported dtype or rank: allowed in the file, refused by get()
    }
  }
  return 0;
}
