// libFuzzer target: arbitrary bytes as a GGUF file. Parsing may reject the input with a
// brisk::Error; anything else (crash, sanitizer report, leak, hang) is a bug. For accepted files
// every key is read through each typed accessor and every tensor's bytes are touched, so the
// validated lengths and offsets are exercised for real.
#include <cstdint>
#include <cstring>

#include "io/gguf.h"
#include "text/gguf_vocab.h"

using namespace brisk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  io::GGUFFile f;
  try {
    f = io::GGUFFile::from_bytes(data, size, "fuzz.gguf");
  } catch (const Error&) {
    return 0;
  }
  for (const auto& [key, value] : f.metadata()) {
    try { (void)f.get_string(key); } catch (const Error&) {}
    try { (void)f.get_int(key); } catch (const Error&) {}
    try { (void)f.get_float(key); } catch (const Error&) {}
    try { (void)f.get_bool(key); } catch (const Error&) {}
  }
  uint64_t sum = 0;
  for (const io::GGUFTensorInfo& t : f.tensors()) {
    const uint8_t* p = static_cast<const uint8_t*>(f.tensor_data(t.name));
    // Every byte of the tensor lies inside the file: ASan reports a read past it.
    for (uint64_t i = 0; i < t.nbytes; i += 61) sum += p[i];
    if (t.nbytes) sum += p[t.nbytes - 1];
    (void)t.shape();
    try {
      Tensor v = f.tensor(t.name);
      if (v.nbytes() != t.nbytes || v.data != p) __builtin_trap();
    } catch (const Error&) {
      // a ggml type brisk does not compute with: listed, refused by tensor()
    }
  }
  // Files that carry a tokenizer also go through the rebuild (small vocabularies only: a
  // fuzzed file is at most a few KB).
  if (f.has("tokenizer.ggml.model")) {
    try {
      text::Tokenizer tok = text::tokenizer_from_gguf(f);
      (void)tok.encode("Hello world <s> 123");
    } catch (const Error&) {
    }
  }
  static volatile uint64_t sink;
  sink = sum;  // keeps the reads from being optimised away
  return 0;
}
