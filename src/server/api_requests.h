// The /v1 request bodies (OpenAI chat/completions, Anthropic messages) parsed into typed
// requests at the edge: every wrong type, missing field or unsupported option becomes an
// HttpError (400) naming the parameter, before any model work starts.
#pragma once
#include <string>
#include <vector>

#include "server/http_util.h"
#include "server/inference_service.h"

namespace brisk::server {

// Sampling and length options common to the three endpoints. Unset (NaN / -1) values fall back
// to the model's generation_config.json (when it asks for sampling), then OpenAI's defaults.
struct SamplingOptions {
  double temperature = -1, top_p = -1, min_p = -1, repetition_penalty = -1;
  double presence_penalty = 0, frequency_penalty = 0;
  int64_t top_k = -1;
  bool has_seed = false;
  uint64_t seed = 0;
  int64_t max_tokens = 0;  // 0 = until the context is full
  std::vector<std::string> stop;
};

struct ChatRequest {
  std::string model;
  json messages = json::array();  // OpenAI-shaped, as the chat template expects them
  json tools;                     // null, or OpenAI-shaped tools [{type, function{name, description, parameters}}]
  json template_kwargs = json::object();  // chat_template_kwargs (enable_thinking, ...)
  SamplingOptions sampling;
  bool stream = false, include_usage = false;
};

struct CompletionRequest {
  std::string model;
  std::string prompt;               // text prompt (tokenized with special tokens)
  std::vector<int32_t> prompt_ids;  // or token ids given directly
  bool echo = false;
  SamplingOptions sampling;
  bool stream = false, include_usage = false;
};

ChatRequest parse_chat_request(const json& body);              // POST /v1/chat/completions
CompletionRequest parse_completion_request(const json& body);  // POST /v1/completions
ChatRequest parse_messages_request(const json& body);          // POST /v1/messages (Anthropic)

// Renders the conversation through the model's chat template (generation prompt added) and
// tokenizes it as apply_chat_template(tokenize=True) does. No template: HttpError 400.
std::vector<int32_t> chat_prompt_ids(const ModelRef& ref, const ChatRequest& req);

// The engine request: sampling parameters resolved against the model's defaults, stop ids.
GenerationRequest make_generation_request(const ModelRef& ref, const SamplingOptions& s, std::vector<int32_t> prompt);

}  // namespace brisk::server
