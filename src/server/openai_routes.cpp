#include "server/openai_routes.h"

#include <algorithm>
#include <chrono>

#include "core/log.h"
#include "server/api_requests.h"
#include "server/http_util.h"
#include "server/tool_calls.h"
#include "text/tokenizer.h"

namespace brisk::server {

namespace {

int64_t unix_now() {
  return int64_t(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// The reply text as it streams, with tool calls held back until they can be parsed whole.
class ReplyText {
 public:
  explicit ReplyText(bool tools) : tools_(tools) {}
  // Appends a piece; returns the text that can be sent now.
  std::string push(const std::string& piece) {
    text_ += piece;
    size_t safe = tools_ ? std::max(sent_, tool_text_safe_prefix(text_)) : text_.size();
    std::string out = text_.substr(sent_, safe - sent_);
    sent_ = safe;
    return out;
  }
  // At the end: the calls, and in *rest the content not sent yet.
  ParsedReply finish(std::string* rest) {
    ParsedReply r = tools_ ? parse_tool_calls(text_) : ParsedReply{text_, {}};
    *rest = r.content.size() > sent_ ? r.content.substr(sent_) : "";
    return r;
  }

 private:
  bool tools_;
  std::string text_;
  size_t sent_ = 0;
};

// Turns a request's events into the wire format of one endpoint, as SSE text.
class SseFormatter {
 public:
  virtual ~SseFormatter() = default;
  virtual std::string begin() = 0;
  virtual std::string text(const std::string& piece) = 0;
  virtual std::string done(const GenerationEvent& ev) = 0;
  virtual std::string error(const std::string& message) = 0;
  // Sent when nothing happened for a while: a write is how a closed connection is noticed.
  virtual std::string keepalive() { return ": keep-alive\n\n"; }
};

// Waits for the request to finish, gathering its text. Failures become HttpError 500.
std::string collect(Generation& gen, GenerationEvent* done) {
  std::string text;
  GenerationEvent ev;
  for (;;) {
    if (!gen.next(ev, 1000)) continue;
    if (!ev.done) {
      text += ev.text;
      continue;
    }
    if (!ev.error.empty()) throw HttpError(500, ev.error);
    if (ev.finish_reason == "cancelled") throw HttpError(503, "the request was cancelled: the server is shutting down");
    *done = ev;
    return text;
  }
}

// Streams the request's events through the formatter as a chunked text/event-stream response.
void stream_events(httplib::Response& res, std::shared_ptr<Generation> gen, std::shared_ptr<SseFormatter> fmt) {
  struct State {
    bool started = false, finished = false;
  };
  auto st = std::make_shared<State>();
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [gen, fmt, st](size_t, httplib::DataSink& sink) {
        if (st->finished) {
          sink.done();
          return true;
        }
        std::string out;
        if (!st->started) {
          out = fmt->begin();
          st->started = true;
        }
        GenerationEvent ev;
        int wait_ms = out.empty() ? 1000 : 0;
        bool any = false;
        // Drain what is ready (one write for several tokens), waiting only for the first.
        while (!st->finished && gen->next(ev, wait_ms)) {
          any = true;
          wait_ms = 0;
          if (!ev.done) {
            out += fmt->text(ev.text);
          } else if (!ev.error.empty() || ev.finish_reason == "cancelled") {
            out += fmt->error(ev.error.empty() ? "the request was cancelled: the server is shutting down" : ev.error);
            st->finished = true;
          } else {
            out += fmt->done(ev);
            st->finished = true;
          }
        }
        if (!any && out.empty()) out = fmt->keepalive();
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          gen->cancel();  // the client went away: free its slot now
          return false;
        }
        if (st->finished) sink.done();
        return true;
      },
      // Runs when the response ends for any reason (also when the connection broke mid-way).
      [gen](bool) { gen->cancel(); });
}

// ---------------------------------------------------------------------------------------------
// OpenAI chat

json tool_calls_json(const std::vector<ToolCall>& calls, bool with_index) {
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json c = json::object();
    if (with_index) c["index"] = i;  // stream deltas are matched to calls by index
    c["id"] = new_request_id("call_");
    c["type"] = "function";
    c["function"] = {{"name", calls[i].name}, {"arguments", calls[i].arguments.dump()}};
    out.push_back(std::move(c));
  }
  return out;
}

json usage_json(const GenerationEvent& ev) {
  return {{"prompt_tokens", ev.prompt_tokens},
          {"completion_tokens", ev.completion_tokens},
          {"total_tokens", ev.prompt_tokens + ev.completion_tokens}};
}

// What the chat and legacy completion streams share: the chunk envelope (id, object, created,
// model), the optional usage chunk and the closing [DONE], and the error event.
class OpenAiStreamFormatter : public SseFormatter {
 public:
  OpenAiStreamFormatter(const char* object, const char* id_prefix, std::string model, bool include_usage)
      : object_(object), id_(new_request_id(id_prefix)), model_(std::move(model)), include_usage_(include_usage) {}
  std::string error(const std::string& message) override {
    return sse_data(openai_error_body(HttpError(500, message)).dump()) + sse_data("[DONE]");
  }

 protected:
  json base() const { return {{"id", id_}, {"object", object_}, {"created", created_}, {"model", model_}}; }
  // The choices-free usage chunk (when the client asked for it) and [DONE].
  std::string stream_end(const GenerationEvent& ev) const {
    std::string out;
    if (include_usage_) {
      json u = base();
      u["choices"] = json::array();
      u["usage"] = usage_json(ev);
      out += sse_data(u.dump());
    }
    return out + sse_data("[DONE]");
  }
  static std::string chunk_data(const json& c) { return sse_data(c.dump(-1, ' ', false, json::error_handler_t::replace)); }

  const char* object_;
  std::string id_;
  int64_t created_ = unix_now();
  std::string model_;
  bool include_usage_;
};

class ChatFormatter : public OpenAiStreamFormatter {
 public:
  ChatFormatter(std::string model, bool tools, bool include_usage)
      : OpenAiStreamFormatter("chat.completion.chunk", "chatcmpl-", std::move(model), include_usage), reply_(tools) {}
  std::string begin() override { return chunk({{"role", "assistant"}, {"content", ""}}, nullptr); }
  std::string text(const std::string& piece) override {
    std::string t = reply_.push(piece);
    return t.empty() ? "" : chunk({{"content", t}}, nullptr);
  }
  std::string done(const GenerationEvent& ev) override {
    std::string rest, out;
    ParsedReply r = reply_.finish(&rest);
    if (!rest.empty()) out += chunk({{"content", rest}}, nullptr);
    std::string reason = ev.finish_reason;
    if (!r.tool_calls.empty()) {
      out += chunk({{"tool_calls", tool_calls_json(r.tool_calls, true)}}, nullptr);
      reason = "tool_calls";
    }
    out += chunk(json::object(), reason);
    return out + stream_end(ev);
  }

 private:
  std::string chunk(json delta, const json& finish_reason) const {
    json c = base();
    c["choices"] = json::array({{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}});
    if (include_usage_) c["usage"] = nullptr;
    return chunk_data(c);
  }
  ReplyText reply_;
};

json chat_response(const std::string& model, const std::string& text, const GenerationEvent& ev, bool tools) {
  ParsedReply parsed = tools ? parse_tool_calls(text) : ParsedReply{text, {}};
  json message = {{"role", "assistant"}, {"content", parsed.content}};
  std::string reason = ev.finish_reason;
  if (!parsed.tool_calls.empty()) {
    if (parsed.content.empty()) message["content"] = nullptr;
    message["tool_calls"] = tool_calls_json(parsed.tool_calls, false);
    reason = "tool_calls";
  }
  return {{"id", new_request_id("chatcmpl-")},
          {"object", "chat.completion"},
          {"created", unix_now()},
          {"model", model},
          {"choices", json::array({{{"index", 0}, {"message", message}, {"logprobs", nullptr}, {"finish_reason", reason}}})},
          {"usage", usage_json(ev)}};
}

// ---------------------------------------------------------------------------------------------
// OpenAI legacy completions

class CompletionFormatter : public OpenAiStreamFormatter {
 public:
  CompletionFormatter(std::string model, std::string echo, bool include_usage)
      : OpenAiStreamFormatter("text_completion", "cmpl-", std::move(model), include_usage), echo_(std::move(echo)) {}
  std::string begin() override { return echo_.empty() ? "" : chunk(echo_, nullptr); }
  std::string text(const std::string& piece) override { return chunk(piece, nullptr); }
  std::string done(const GenerationEvent& ev) override { return chunk("", ev.finish_reason) + stream_end(ev); }

 private:
  std::string chunk(const std::string& text, const json& finish_reason) const {
    json c = base();
    c["choices"] = json::array({{{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}});
    return chunk_data(c);
  }
  std::string echo_;
};

// ---------------------------------------------------------------------------------------------
// Anthropic messages

std::string anthropic_stop_reason(const GenerationEvent& ev, const std::vector<std::string>& user_stops, bool tool_use,
                                  json* stop_sequence) {
  *stop_sequence = nullptr;
  if (tool_use) return "tool_use";
  if (ev.finish_reason == "length") return "max_tokens";
  if (!ev.stop_sequence.empty() &&
      std::find(user_stops.begin(), user_stops.end(), ev.stop_sequence) != user_stops.end()) {
    *stop_sequence = ev.stop_sequence;
    return "stop_sequence";
  }
  return "end_turn";
}

class MessagesFormatter : public SseFormatter {
 public:
  MessagesFormatter(std::string model, bool tools, std::vector<std::string> stops, int64_t input_tokens)
      : model_(std::move(model)), tools_(tools), reply_(tools), stops_(std::move(stops)), input_tokens_(input_tokens) {}
  std::string begin() override {
    json msg = {{"id", new_request_id("msg_")}, {"type", "message"}, {"role", "assistant"}, {"model", model_},
                {"content", json::array()}, {"stop_reason", nullptr}, {"stop_sequence", nullptr},
                {"usage", {{"input_tokens", input_tokens_}, {"output_tokens", 0}}}};
    std::string out = event("message_start", {{"type", "message_start"}, {"message", msg}});
    // Without tools the reply is one text block: open it now, as Anthropic's API does. With
    // tools it opens when text arrives (a reply may be tool calls only).
    if (!tools_) out += open_text();
    return out + event("ping", {{"type", "ping"}});
  }
  std::string text(const std::string& piece) override { return text_delta(reply_.push(piece)); }
  std::string done(const GenerationEvent& ev) override {
    std::string rest;
    ParsedReply r = reply_.finish(&rest);
    std::string out = text_delta(rest);
    if (text_open_) {
      out += event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_}});
      ++index_;
      text_open_ = false;
    }
    for (const ToolCall& c : r.tool_calls) {
      json block = {{"type", "tool_use"}, {"id", new_request_id("toolu_")}, {"name", c.name}, {"input", json::object()}};
      out += event("content_block_start", {{"type", "content_block_start"}, {"index", index_}, {"content_block", block}});
      out += event("content_block_delta", {{"type", "content_block_delta"}, {"index", index_},
                                           {"delta", {{"type", "input_json_delta"}, {"partial_json", c.arguments.dump()}}}});
      out += event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_}});
      ++index_;
    }
    json stop_sequence;
    std::string reason = anthropic_stop_reason(ev, stops_, !r.tool_calls.empty(), &stop_sequence);
    out += event("message_delta", {{"type", "message_delta"},
                                   {"delta", {{"stop_reason", reason}, {"stop_sequence", stop_sequence}}},
                                   {"usage", {{"output_tokens", ev.completion_tokens}}}});
    return out + event("message_stop", {{"type", "message_stop"}});
  }
  std::string error(const std::string& message) override {
    return event("error", anthropic_error_body(HttpError(500, message)));
  }
  std::string keepalive() override { return event("ping", {{"type", "ping"}}); }

 private:
  static std::string event(const char* name, const json& data) {
    return sse_event(name, data.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  std::string open_text() {
    text_open_ = true;
    return event("content_block_start",
                 {{"type", "content_block_start"}, {"index", index_}, {"content_block", {{"type", "text"}, {"text", ""}}}});
  }
  std::string text_delta(const std::string& t) {
    if (t.empty()) return "";
    std::string out = text_open_ ? "" : open_text();
    return out + event("content_block_delta", {{"type", "content_block_delta"}, {"index", index_},
                                               {"delta", {{"type", "text_delta"}, {"text", t}}}});
  }
  std::string model_;
  bool tools_;
  ReplyText reply_;
  std::vector<std::string> stops_;
  int64_t input_tokens_;
  int index_ = 0;
  bool text_open_ = false;
};

json messages_response(const std::string& model, const std::string& text, const GenerationEvent& ev, bool tools,
                       const std::vector<std::string>& stops) {
  ParsedReply r = tools ? parse_tool_calls(text) : ParsedReply{text, {}};
  json content = json::array();
  if (!r.content.empty() || r.tool_calls.empty()) content.push_back({{"type", "text"}, {"text", r.content}});
  for (const ToolCall& c : r.tool_calls)
    content.push_back({{"type", "tool_use"}, {"id", new_request_id("toolu_")}, {"name", c.name}, {"input", c.arguments}});
  json stop_sequence;
  std::string reason = anthropic_stop_reason(ev, stops, !r.tool_calls.empty(), &stop_sequence);
  return {{"id", new_request_id("msg_")}, {"type", "message"}, {"role", "assistant"}, {"model", model},
          {"content", content}, {"stop_reason", reason}, {"stop_sequence", stop_sequence},
          {"usage", {{"input_tokens", ev.prompt_tokens}, {"output_tokens", ev.completion_tokens}}}};
}

// ---------------------------------------------------------------------------------------------
// Handlers

void handle_chat(InferenceService& svc, const httplib::Request& req, httplib::Response& res) {
  ChatRequest r = parse_chat_request(parse_json_object(req));
  ModelRef ref = svc.resolve(r.model);
  GenerationRequest g = make_generation_request(ref, r.sampling, chat_prompt_ids(ref, r));
  bool tools = !r.tools.is_null();
  auto gen = svc.submit(ref, std::move(g));
  if (r.stream) return stream_events(res, gen, std::make_shared<ChatFormatter>(r.model, tools, r.include_usage));
  GenerationEvent done;
  std::string text = collect(*gen, &done);
  send_json(res, chat_response(r.model, text, done, tools));
}

void handle_completion(InferenceService& svc, const httplib::Request& req, httplib::Response& res) {
  CompletionRequest r = parse_completion_request(parse_json_object(req));
  ModelRef ref = svc.resolve(r.model);
  std::vector<int32_t> ids = r.prompt_ids.empty() ? ref.tokenizer().encode(r.prompt, /*add_special_tokens=*/true) : r.prompt_ids;
  std::string echo = !r.echo ? "" : r.prompt_ids.empty() ? r.prompt : ref.tokenizer().decode(r.prompt_ids);
  auto gen = svc.submit(ref, make_generation_request(ref, r.sampling, std::move(ids)));
  if (r.stream) return stream_events(res, gen, std::make_shared<CompletionFormatter>(r.model, echo, r.include_usage));
  GenerationEvent done;
  std::string text = echo + collect(*gen, &done);
  send_json(res, {{"id", new_request_id("cmpl-")},
                  {"object", "text_completion"},
                  {"created", unix_now()},
                  {"model", r.model},
                  {"choices", json::array({{{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", done.finish_reason}}})},
                  {"usage", usage_json(done)}});
}

void handle_messages(InferenceService& svc, const httplib::Request& req, httplib::Response& res) {
  ChatRequest r = parse_messages_request(parse_json_object(req));
  ModelRef ref = svc.resolve(r.model);
  GenerationRequest g = make_generation_request(ref, r.sampling, chat_prompt_ids(ref, r));
  bool tools = !r.tools.is_null();
  int64_t input_tokens = int64_t(g.prompt.size());
  auto gen = svc.submit(ref, std::move(g));
  if (r.stream)
    return stream_events(res, gen, std::make_shared<MessagesFormatter>(r.model, tools, r.sampling.stop, input_tokens));
  GenerationEvent done;
  std::string text = collect(*gen, &done);
  send_json(res, messages_response(r.model, text, done, tools, r.sampling.stop));
}

json model_json(const std::string& id, int64_t created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "brisk"}};
}

json models_list(const InferenceService& svc) {
  json data = json::array();
  for (const ModelInfo& m : svc.list()) {
    data.push_back(model_json(m.name, m.created));
    for (const std::string& a : m.adapters) data.push_back(model_json(m.name + ":" + a, m.created));
  }
  return {{"object", "list"}, {"data", data}};
}

}  // namespace

void mount_openai_routes(httplib::Server& svr, InferenceService& service, AuthorizeFn authorized) {
  InferenceService* svc = &service;
  // Every handler: auth, then typed errors to status codes in the endpoint's error shape.
  auto route = [svc, authorized](ErrorStyle style, void (*fn)(InferenceService&, const httplib::Request&, httplib::Response&)) {
    return [svc, authorized, style, fn](const httplib::Request& req, httplib::Response& res) {
      try {
        if (authorized && !authorized(req))
          throw HttpError(401, "invalid or missing API key (send Authorization: Bearer KEY or x-api-key: KEY)", "",
                          "invalid_api_key");
        fn(*svc, req, res);
      } catch (const HttpError& e) {
        send_error(res, e, style);
      } catch (const ModelNotFound& e) {
        send_error(res, HttpError(404, e.what(), "model", "model_not_found", "invalid_request_error"), style);
      } catch (const ContextLengthExceeded& e) {
        send_error(res, HttpError(400, e.what(), "messages", "context_length_exceeded"), style);
      } catch (const Error& e) {
        // Bad input the engine caught: a template's raise_exception, a sampling parameter, ...
        send_error(res, HttpError(400, e.what()), style);
      } catch (const std::exception& e) {
        log_error(req.method, " ", req.path, " failed: ", e.what());
        send_error(res, HttpError(500, std::string("internal error: ") + e.what()), style);
      }
    };
  };
  svr.Post("/v1/chat/completions", route(ErrorStyle::OpenAI, handle_chat));
  svr.Post("/v1/completions", route(ErrorStyle::OpenAI, handle_completion));
  svr.Post("/v1/messages", route(ErrorStyle::Anthropic, handle_messages));
  svr.Get("/v1/models", route(ErrorStyle::OpenAI, [](InferenceService& s, const httplib::Request&, httplib::Response& res) {
            send_json(res, models_list(s));
          }));
  svr.Get(R"(/v1/models/(.+))", route(ErrorStyle::OpenAI, [](InferenceService& s, const httplib::Request& req, httplib::Response& res) {
            std::string id = req.matches[1];
            ModelRef ref = s.resolve(id);  // 404 when unknown
            send_json(res, model_json(id, ref.created()));
          }));
}

}  // namespace brisk::server
