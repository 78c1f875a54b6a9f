// HTTP helpers and /v1 request validation (no model needed).
#include <gtest/gtest.h>

#include "server/api_requests.h"
#include "server/http_util.h"

namespace brisk::server {
namespace {

TEST(ServerHttp, SseFraming) {
  EXPECT_EQ(sse_data(R"({"a":1})"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_data("[DONE]"), "data: [DONE]\n\n");
  EXPECT_EQ(sse_event("message_stop", R"({"type":"message_stop"})"),
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

TEST(ServerHttp, ErrorBodiesInBothShapes) {
  HttpError e(400, "bad 'n'", "n", "unsupported");
  json o = openai_error_body(e);
  EXPECT_EQ(o.dump(), R"({"error":{"message":"bad 'n'","type":"invalid_request_error","param":"n","code":"unsupported"}})");
  json a = anthropic_error_body(HttpError(413, "too big"));
  EXPECT_EQ(a.dump(), R"({"type":"error","error":{"type":"request_too_large","message":"too big"}})");
  json n = openai_error_body(HttpError(404, "gone"));
  EXPECT_TRUE(n["error"]["param"].is_null() && n["error"]["code"].is_null());
  EXPECT_EQ(n["error"]["type"], "not_found_error");
  EXPECT_EQ(error_style_for_path("/v1/messages"), ErrorStyle::Anthropic);
  EXPECT_EQ(error_style_for_path("/v1/chat/completions"), ErrorStyle::OpenAI);
}

TEST(ServerHttp, ApiKeyExtractionAndConstantTimeCompare) {
  httplib::Request r;
  EXPECT_EQ(request_api_key(r), "");
  r.set_header("x-api-key", "k1");
  EXPECT_EQ(request_api_key(r), "k1");
  r.set_header("Authorization", "Bearer k2");
  EXPECT_EQ(request_api_key(r), "k2");  // Bearer wins
  EXPECT_TRUE(constant_time_equals("secret", "secret"));
  EXPECT_FALSE(constant_time_equals("secret", "secreT"));
  EXPECT_FALSE(constant_time_equals("secret", "secret2"));
  EXPECT_FALSE(constant_time_equals("", "x"));
}

TEST(ServerHttp, AccessLogHasNoSecrets) {
  httplib::Request r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.remote_addr = "127.0.0.1";
  r.set_header("Authorization", "Bearer sk-very-secret");
  r.set_header("x-api-key", "sk-other-secret");
  httplib::Response res;
  res.status = 401;
  std::string line = access_log_line(r, res);
  EXPECT_EQ(line.find("secret"), std::string::npos) << line;
  EXPECT_NE(line.find("POST /v1/chat/completions 401"), std::string::npos) << line;
}

TEST(ServerHttp, RequestIdsAreUniqueAndPrefixed) {
  std::string a = new_request_id("chatcmpl-"), b = new_request_id("chatcmpl-");
  EXPECT_EQ(a.rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(a.size(), 9u + 24u);
  EXPECT_NE(a, b);
}

// Every malformed request is an HttpError with a 4xx status naming the parameter.
void expect_400(const std::string& body, const char* param, bool anthropic = false) {
  json b = json::parse(body);
  try {
    if (anthropic) parse_messages_request(b);
    else parse_chat_request(b);
    ADD_FAILURE() << "accepted: " << body;
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 400) << body;
    EXPECT_EQ(e.param(), param) << body << ": " << e.what();
  }
}

TEST(ServerRequests, ChatValidation) {
  const std::string msgs = R"("messages":[{"role":"user","content":"hi"}])";
  expect_400(R"({"messages":[{"role":"user","content":"hi"}]})", "model");
  expect_400(R"({"model":"m"})", "messages");
  expect_400(R"({"model":"m","messages":[]})", "messages");
  expect_400(R"({"model":"m","messages":"hi"})", "messages");
  expect_400(R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})", "messages");
  expect_400(R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "messages");
  expect_400(R"({"model":"m",)" + msgs + R"(,"n":2})", "n");
  expect_400(R"({"model":"m",)" + msgs + R"(,"temperature":"hot"})", "temperature");
  expect_400(R"({"model":"m",)" + msgs + R"(,"temperature":3})", "temperature");
  expect_400(R"({"model":"m",)" + msgs + R"(,"top_p":0})", "top_p");
  expect_400(R"({"model":"m",)" + msgs + R"(,"max_tokens":0})", "max_tokens");
  expect_400(R"({"model":"m",)" + msgs + R"(,"max_tokens":1.5})", "max_tokens");
  expect_400(R"({"model":"m",)" + msgs + R"(,"stop":[1]})", "stop");
  expect_400(R"({"model":"m",)" + msgs + R"(,"stream":"yes"})", "stream");
  expect_400(R"({"model":"m",)" + msgs + R"(,"tools":[{"type":"function"}]})", "tools");
  expect_400(R"({"model":"m",)" + msgs + R"(,"response_format":{"type":"json_schema"}})", "response_format");
}

TEST(ServerRequests, ChatParsesOptionsAndToolTurns) {
  json b = json::parse(R"({"model":"m:ad","max_completion_tokens":7,"max_tokens":99,"stop":"END","seed":5,
    "temperature":0,"top_k":3,"stream":true,"stream_options":{"include_usage":true},
    "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],
    "messages":[{"role":"developer","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
        "function":{"name":"f","arguments":"{\"x\":1}"}}]},
      {"role":"tool","tool_call_id":"c1","content":"42"}]})");
  ChatRequest r = parse_chat_request(b);
  EXPECT_EQ(r.model, "m:ad");
  EXPECT_EQ(r.sampling.max_tokens, 7);  // max_completion_tokens wins
  EXPECT_EQ(r.sampling.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(r.sampling.has_seed);
  EXPECT_EQ(r.sampling.seed, 5u);
  EXPECT_EQ(r.sampling.temperature, 0);
  EXPECT_EQ(r.sampling.top_k, 3);
  EXPECT_TRUE(r.stream && r.include_usage);
  ASSERT_TRUE(r.tools.is_array());
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[0]["content"], "a\nb");
  // Arguments reach the template as an object, not a JSON string.
  EXPECT_EQ(r.messages[1]["tool_calls"][0]["function"]["arguments"], json::parse(R"({"x":1})"));
  EXPECT_EQ(r.messages[2]["role"], "tool");
  EXPECT_EQ(r.messages[2]["tool_call_id"], "c1");
  // tool_choice "none": tools are not shown to the model.
  b["tool_choice"] = "none";
  EXPECT_TRUE(parse_chat_request(b).tools.is_null());
}

TEST(ServerRequests, AnthropicValidationAndConversion) {
  expect_400(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})", "max_tokens", true);
  expect_400(R"({"max_tokens":5,"messages":[{"role":"user","content":"hi"}]})", "model", true);
  expect_400(R"({"model":"m","max_tokens":5,"messages":[{"role":"system","content":"hi"}]})", "messages", true);
  expect_400(R"({"model":"m","max_tokens":5,"temperature":1.5,"messages":[{"role":"user","content":"x"}]})", "temperature", true);
  expect_400(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image"}]}]})", "messages", true);
  ChatRequest r = parse_messages_request(json::parse(R"({"model":"m","max_tokens":5,"system":"be brief",
    "stop_sequences":["X","Y"],"tools":[{"name":"f","description":"d","input_schema":{"type":"object"}}],
    "messages":[{"role":"user","content":"q"},
      {"role":"assistant","content":[{"type":"text","text":"calling"},{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]})"));
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[2]["tool_calls"][0]["function"]["arguments"], json::parse(R"({"a":1})"));
  EXPECT_EQ(r.messages[3]["role"], "tool");
  EXPECT_EQ(r.messages[3]["content"], "ok");
  EXPECT_EQ(r.sampling.stop, (std::vector<std::string>{"X", "Y"}));
  EXPECT_EQ(r.tools[0]["function"]["parameters"]["type"], "object");
}

TEST(ServerRequests, CompletionPromptForms) {
  auto c = parse_completion_request(json::parse(R"({"model":"m","prompt":"hello"})"));
  EXPECT_EQ(c.prompt, "hello");
  EXPECT_EQ(c.sampling.max_tokens, 16);  // OpenAI's default for completions
  c = parse_completion_request(json::parse(R"({"model":"m","prompt":[[1,2,3]],"max_tokens":4})"));
  EXPECT_EQ(c.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  for (const char* bad : {R"({"model":"m","prompt":5})", R"({"model":"m","prompt":["a","b"]})", R"({"model":"m"})"}) {
    EXPECT_THROW(parse_completion_request(json::parse(bad)), HttpError) << bad;
  }
}

}  // namespace
}  // namespace brisk::server
