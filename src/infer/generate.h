// Text generation: prompt processing, then token-by-token decoding with sampling, stop ids,
// stop strings and streaming of complete UTF-8 text.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "infer/decoder.h"
#include "infer/sampler.h"
#include "model/model.h"

namespace brisk::text {
class Tokenizer;
}

namespace brisk::infer {

struct GenerateOptions {
  SamplingParams sampling;
  int64_t max_tokens = 256;
  std::vector<int64_t> stop_ids;          // generation stops after emitting one of these
  std::vector<std::string> stop_strings;  // generation stops before the first occurrence
  int64_t context = 0;                    // KV capacity; 0 = prompt + max_tokens
};

struct GenerateResult {
  std::vector<int32_t> ids;   // generated ids, including a final stop id (as HF generate does)
  std::string text;           // decoded text, without stop ids and cut before a stop string
  std::string finish_reason;  // "stop" or "length"
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

// on_text receives text as soon as it is final (never half a UTF-8 character, never text that
// could still turn out to be the start of a stop string). tokenizer may be null (ids only).
GenerateResult generate(Decoder& model, const text::Tokenizer* tokenizer, const std::vector<int32_t>& prompt,
                        const GenerateOptions& opt, const std::function<void(const std::string&)>& on_text = {});
// The same on the CPU (a CpuDecoder over `model`).
GenerateResult generate(Model& model, const text::Tokenizer* tokenizer, const std::vector<int32_t>& prompt,
                        const GenerateOptions& opt, const std::function<void(const std::string&)>& on_text = {});

// Finds where a stop string starts in `text` (npos if none), and how many trailing bytes of
// `text` could be the beginning of one (they must be held back while streaming).
size_t find_stop(const std::string& text, const std::vector<std::string>& stops, size_t* hold_back);

}  // namespace brisk::infer
