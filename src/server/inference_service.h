// The models a server holds in memory and the scheduler that generates for many requests at
// once (continuous batching, as in llama.cpp's server and vLLM):
//
//   - each loaded model has a decoder with N KV-cache slots and one scheduler thread;
//   - a submitted request waits in a queue until a slot is free, then its prompt is prefilled in
//     chunks (several prompts and the running decodes share one forward call);
//   - every step appends one token to every decoding slot in ONE Decoder::forward call (one per
//     adapter when slots use different adapters), samples each request with its own Sampler,
//     applies stop ids and stop strings, and hands complete UTF-8 text to the request's stream;
//   - a cancelled request (client gone, server stopping) frees its slot at the next step.
//
// Model ids: the base model's name ("qwen3-tiny") and "name:adapter" for each adapter loaded
// with it, so a client can compare the base and the fine-tuned model through the same API.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "infer/sampler.h"
#include "model/config.h"

namespace brisk {
class Model;
struct LoraAdapter;
namespace text {
class Tokenizer;
class ChatTemplate;
}  // namespace text
namespace infer {
class Decoder;
}
}  // namespace brisk

namespace brisk::server {

// Unknown model id (404 at the API).
class ModelNotFound : public Error {
 public:
  using Error::Error;
};

// Prompt + max_tokens over the context (400 "context_length_exceeded" at the API).
class ContextLengthExceeded : public Error {
 public:
  using Error::Error;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  infer::SamplingParams sampling;
  int64_t max_tokens = 0;                 // 0: until the context is full
  std::vector<int64_t> stop_ids;          // stop after emitting one of these (not in the text)
  std::vector<std::string> stop_strings;  // stop before the first occurrence
};

// What a request gets back, in order: text pieces, then one final event (done = true).
struct GenerationEvent {
  std::string text;
  bool done = false;
  std::string finish_reason;   // "stop", "length" or "cancelled" (with done)
  std::string stop_sequence;   // the stop string that ended generation, if one did
  std::string error;           // set when generation failed (done)
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// One request in flight: a thread-safe channel from the scheduler to the HTTP handler.
class Generation {
 public:
  // Waits up to timeout_ms for the next event; false on timeout.
  bool next(GenerationEvent& ev, int timeout_ms);
  // Asks the scheduler to stop this request and free its slot (idempotent, any thread).
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Scheduler side.
  void push(GenerationEvent ev);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GenerationEvent> queue_;
  std::atomic<bool> cancelled_{false};
};

struct ModelLoadOptions {
  std::string path;  // HF model folder or .gguf file
  std::string name;  // model id; "" = the folder's / file's base name
  std::vector<std::pair<std::string, std::string>> adapters;  // (name, PEFT folder)
  std::string device = "auto";
  int parallel = 8;     // KV slots: requests decoded together
  int64_t context = 0;  // tokens per slot; 0 = min(max_position_embeddings, 4096)
};

// A loaded model as request handlers see it (read-only after load; tokenizer and templates are
// safe to use from many threads).
struct ModelInfo {
  std::string name, path, device;
  std::vector<std::string> adapters;
  int64_t context = 0, vocab_size = 0;
  int parallel = 0;
  int64_t created = 0;  // unix seconds at load
};

class LoadedModel;

// Everything a handler needs to build a prompt for a model id and submit it.
struct ModelRef {
  std::shared_ptr<LoadedModel> model;
  std::string adapter;  // "" = base
  const std::string& model_name() const;
  const text::Tokenizer& tokenizer() const;
  // The chat template to render with (the tool-use variant when tools are given and the model
  // has one); null when the model has no chat template.
  const text::ChatTemplate* chat_template(bool has_tools) const;
  const std::string& bos_token() const;
  const std::string& eos_token() const;
  std::vector<int64_t> stop_ids() const;  // generation_config's eos ids, else config's
  int64_t context() const;
  int64_t created() const;  // unix seconds at load
  const GenerationConfig& generation_config() const;
};

class InferenceService {
 public:
  InferenceService();
  ~InferenceService();  // cancels everything and joins the schedulers
  InferenceService(const InferenceService&) = delete;
  InferenceService& operator=(const InferenceService&) = delete;

  // Loads a model (and its adapters) and starts its scheduler. Returns its name. A name already
  // loaded is a brisk::Error.
  std::string load(const ModelLoadOptions& opt);
  // Cancels the model's requests, stops its scheduler, frees it. Unknown name: ModelNotFound.
  void unload(const std::string& name);
  std::vector<ModelInfo> list() const;
  // Every id clients may use: each name, then each "name:adapter".
  std::vector<std::string> model_ids() const;

  // Resolves "name" or "name:adapter" (ModelNotFound otherwise).
  ModelRef resolve(const std::string& model_id) const;

  // Queues a request. Checks prompt ids and that prompt + max_tokens fits the context
  // (ContextLengthExceeded with the numbers otherwise; other bad input: brisk::Error). The returned stream ends with a done event.
  std::shared_ptr<Generation> submit(const ModelRef& ref, GenerationRequest req);

  // Cancels every request of every model (server shutdown); loaded models stay.
  void cancel_all();

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<LoadedModel>> models_;
};

}  // namespace brisk::server
