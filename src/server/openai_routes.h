// The public inference API, mounted by both `brisk serve` and `brisk studio`:
//   POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /v1/models/{id}
//   (OpenAI wire format) and POST /v1/messages (Anthropic wire format, Anthropic error shape).
// Streaming responses are Server-Sent Events; a client that disconnects cancels its request.
#pragma once
#include <functional>

#include <httplib.h>

#include "server/inference_service.h"

namespace brisk::server {

using AuthorizeFn = std::function<bool(const httplib::Request&)>;

// `authorized` decides per request (null: everything is allowed); a refused request gets 401.
// The service must outlive the server.
void mount_openai_routes(httplib::Server& svr, InferenceService& service, AuthorizeFn authorized);

}  // namespace brisk::server
