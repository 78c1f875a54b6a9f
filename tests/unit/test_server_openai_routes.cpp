// The /v1 routes in-process (httplib server + client on a free port, tiny random Qwen3): the
// exact SSE wire formats, auth, and the error statuses and shapes.
#include <gtest/gtest.h>

#include <thread>

#include "common/test_util.h"
#include "model/init_model.h"
#include "server/http_util.h"
#include "server/inference_service.h"
#include "server/openai_routes.h"

namespace brisk::server {
namespace {

constexpr const char* kKey = "sk-test-key";

class RoutesTiny : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    InitModelOptions o;
    o.arch = "qwen3";
    o.preset = "tiny";
    o.seed = 8;
    o.tokenizer_dir = testing::tokenizer_dir("qwen3");
    init_model(dir_->path + "/m", o);
    svc_ = new InferenceService();
    ModelLoadOptions lo;
    lo.path = dir_->path + "/m";
    lo.name = "tiny";
    lo.device = "cpu";
    lo.parallel = 2;
    lo.context = 256;
    svc_->load(lo);
    svr_ = new httplib::Server();
    install_common_handlers(*svr_, /*max_body_bytes=*/4096);
    mount_openai_routes(*svr_, *svc_, [](const httplib::Request& r) { return constant_time_equals(request_api_key(r), kKey); });
    port_ = svr_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = new std::thread([] { svr_->listen_after_bind(); });
  }
  static void TearDownTestSuite() {
    svr_->stop();
    thread_->join();
    delete thread_;
    delete svr_;
    delete svc_;
    delete dir_;
  }

  static httplib::Result post(const std::string& path, const std::string& body, bool with_key = true) {
    httplib::Client cli("127.0.0.1", port_);
    cli.set_read_timeout(60, 0);
    httplib::Headers h;
    if (with_key) h.emplace("x-api-key", kKey);
    return cli.Post(path.c_str(), h, body, "application/json");
  }

  // "data: ..." / "event: ...\ndata: ..." blocks of an SSE body.
  static std::vector<std::string> sse_blocks(const std::string& body) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < body.size()) {
      size_t end = body.find("\n\n", pos);
      EXPECT_NE(end, std::string::npos) << "unterminated SSE event at byte " << pos;
      if (end == std::string::npos) break;
      out.push_back(body.substr(pos, end - pos));
      pos = end + 2;
    }
    return out;
  }

  static testing::TempDir* dir_;
  static InferenceService* svc_;
  static httplib::Server* svr_;
  static std::thread* thread_;
  static int port_;
};
testing::TempDir* RoutesTiny::dir_ = nullptr;
InferenceService* RoutesTiny::svc_ = nullptr;
httplib::Server* RoutesTiny::svr_ = nullptr;
std::thread* RoutesTiny::thread_ = nullptr;
int RoutesTiny::port_ = 0;

const std::string kChat = R"({"model":"tiny","messages":[{"role":"user","content":"hello there"}],"max_tokens":10,"temperature":0)";

TEST_F(RoutesTiny, ChatStreamWireFormatMatchesNonStreaming) {
  auto plain = post("/v1/chat/completions", kChat + "}");
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200) << plain->body;
  json whole = json::parse(plain->body);
  std::string want = whole["choices"][0]["message"]["content"];

  auto res = post("/v1/chat/completions", kChat + R"(,"stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  auto blocks = sse_blocks(res->body);
  ASSERT_GE(blocks.size(), 4u) << res->body;
  EXPECT_EQ(blocks.back(), "data: [DONE]");
  std::string text, id, finish;
  for (size_t i = 0; i + 1 < blocks.size(); ++i) {
    ASSERT_EQ(blocks[i].rfind("data: ", 0), 0u) << blocks[i];
    json c = json::parse(blocks[i].substr(6));
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    if (i == 0) {
      id = c["id"];
      EXPECT_EQ(c["choices"][0]["delta"]["role"], "assistant");
    }
    EXPECT_EQ(c["id"], id);
    if (i + 2 == blocks.size()) {  // the usage chunk
      EXPECT_TRUE(c["choices"].empty());
      EXPECT_EQ(c["usage"], whole["usage"]);
      continue;
    }
    EXPECT_TRUE(c["usage"].is_null());
    const json& ch = c["choices"][0];
    if (ch["delta"].contains("content")) text += ch["delta"]["content"].get<std::string>();
    if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
  }
  EXPECT_EQ(text, want);
  EXPECT_EQ(finish, whole["choices"][0]["finish_reason"]);
}

TEST_F(RoutesTiny, AnthropicStreamEventSequence) {
  auto res = post("/v1/messages", R"({"model":"tiny","max_tokens":6,"temperature":0,"stream":true,"messages":[{"role":"user","content":"hi"}]})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  std::vector<std::string> names;
  for (const std::string& b : sse_blocks(res->body)) {
    ASSERT_EQ(b.rfind("event: ", 0), 0u) << b;
    size_t nl = b.find('\n');
    std::string name = b.substr(7, nl - 7);
    ASSERT_EQ(b.compare(nl + 1, 6, "data: "), 0) << b;
    json data = json::parse(b.substr(nl + 7));
    EXPECT_EQ(data["type"], name);  // every event's data names its own type
    if (name == "message_delta") {
      EXPECT_EQ(data["delta"]["stop_reason"], "max_tokens");
      EXPECT_EQ(data["usage"]["output_tokens"], 6);
    }
    if (names.empty() || names.back() != name || name != "content_block_delta") names.push_back(name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"message_start", "content_block_start", "ping", "content_block_delta",
                                             "content_block_stop", "message_delta", "message_stop"}));
}

TEST_F(RoutesTiny, ErrorsHaveTheRightStatusAndShape) {
  struct Case {
    const char* path;
    std::string body;
    bool key;
    int status;
    const char* what;  // OpenAI error.code / type, or Anthropic error.type
  };
  std::vector<Case> cases = {
      {"/v1/chat/completions", kChat + "}", false, 401, "invalid_api_key"},
      {"/v1/messages", R"({"model":"tiny","max_tokens":5,"messages":[]})", false, 401, "authentication_error"},
      {"/v1/chat/completions", "{\"model\":", true, 400, "invalid_request_error"},
      {"/v1/chat/completions", R"({"model":"other","messages":[{"role":"user","content":"x"}]})", true, 404, "model_not_found"},
      {"/v1/chat/completions", kChat + R"(,"n":3})", true, 400, "invalid_request_error"},
      {"/v1/chat/completions", R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"max_tokens":300})", true, 400,
       "context_length_exceeded"},
      {"/v1/completions", R"({"model":"tiny","prompt":[999999999]})", true, 400, "invalid_request_error"},
      {"/v1/chat/completions", std::string(5000, ' '), true, 413, "invalid_request_error"},
      {"/v1/messages", R"({"model":"tiny","messages":[{"role":"user","content":"x"}]})", true, 400, "invalid_request_error"},
      {"/v1/messages", std::string(5000, ' '), true, 413, "request_too_large"},
      {"/v1/nowhere", "{}", true, 404, "not_found_error"},
  };
  for (const Case& c : cases) {
    auto res = post(c.path, c.body, c.key);
    ASSERT_TRUE(res) << c.path;
    EXPECT_EQ(res->status, c.status) << c.path << " " << c.body.substr(0, 80) << " -> " << res->body;
    json b = json::parse(res->body, nullptr, false);
    ASSERT_FALSE(b.is_discarded()) << res->body;
    if (std::string(c.path) == "/v1/messages") {
      EXPECT_EQ(b["type"], "error") << res->body;
      EXPECT_EQ(b["error"]["type"], c.what) << res->body;
    } else {
      const json& e = b["error"];
      EXPECT_TRUE(e["message"].is_string()) << res->body;
      bool matches = (e["code"].is_string() && e["code"] == c.what) || e["type"] == c.what;
      EXPECT_TRUE(matches) << "want " << c.what << ": " << res->body;
    }
  }
  // The server still answers after all of that.
  EXPECT_EQ(post("/v1/chat/completions", kChat + "}")->status, 200);
}

}  // namespace
}  // namespace brisk::server
