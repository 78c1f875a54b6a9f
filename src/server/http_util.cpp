#include "server/http_util.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <mutex>
#include <random>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"

namespace brisk::server {

HttpError::HttpError(int status, std::string message, std::string param, std::string code, std::string type)
    : std::runtime_error(std::move(message)),
      status_(status),
      type_(type.empty() ? openai_error_type(status) : std::move(type)),
      param_(std::move(param)),
      code_(std::move(code)) {}

std::string openai_error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string anthropic_error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

json openai_error_body(const HttpError& e) {
  json err = {{"message", e.what()}, {"type", e.type()}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param().empty()) err["param"] = e.param();
  if (!e.code().empty()) err["code"] = e.code();
  return json{{"error", err}};
}

json anthropic_error_body(const HttpError& e) {
  return json{{"type", "error"}, {"error", {{"type", anthropic_error_type(e.status())}, {"message", e.what()}}}};
}

ErrorStyle error_style_for_path(const std::string& path) {
  return path.rfind("/v1/messages", 0) == 0 ? ErrorStyle::Anthropic : ErrorStyle::OpenAI;
}

void send_json(httplib::Response& res, const json& body, int status) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const HttpError& e, ErrorStyle style) {
  send_json(res, style == ErrorStyle::Anthropic ? anthropic_error_body(e) : openai_error_body(e), e.status());
}

json parse_json_object(const httplib::Request& req) {
  json body;
  try {
    body = json::parse(req.body);
  } catch (const json::parse_error& e) {
    // nlohmann's message names the byte offset, which is what a client needs to find the fault.
    throw HttpError(400, cat("request body is not valid JSON: ", e.what()));
  }
  if (!body.is_object()) throw HttpError(400, "request body must be a JSON object");
  return body;
}

namespace {
const json* present(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}
[[noreturn]] void wrong_type(const char* key, const char* want, const json& got) {
  throw HttpError(400, cat("'", key, "' must be ", want, ", got ", got.type_name()), key);
}
}  // namespace

std::string get_string(const json& obj, const char* key, const std::string& fallback) {
  const json* v = present(obj, key);
  if (!v) return fallback;
  if (!v->is_string()) wrong_type(key, "a string", *v);
  return v->get<std::string>();
}

double get_number(const json& obj, const char* key, double fallback) {
  const json* v = present(obj, key);
  if (!v) return fallback;
  if (!v->is_number()) wrong_type(key, "a number", *v);
  return v->get<double>();
}

int64_t get_int(const json& obj, const char* key, int64_t fallback) {
  const json* v = present(obj, key);
  if (!v) return fallback;
  // 5.0 is accepted (JavaScript clients have no integer type); 5.5 is not.
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (d == double(int64_t(d)) && d > -9e18 && d < 9e18) return int64_t(d);
  }
  wrong_type(key, "an integer", *v);
}

bool get_bool(const json& obj, const char* key, bool fallback) {
  const json* v = present(obj, key);
  if (!v) return fallback;
  if (!v->is_boolean()) wrong_type(key, "a boolean", *v);
  return v->get<bool>();
}

std::string sse_data(const std::string& payload) { return "data: " + payload + "\n\n"; }

std::string sse_event(const std::string& event, const std::string& payload) {
  return "event: " + event + "\ndata: " + payload + "\n\n";
}

std::string new_request_id(const std::string& prefix) {
  // Ids only need to be unique, not secret: a process-wide generator seeded from the clock and
  // random_device, behind a mutex (handlers run on many threads).
  static std::mutex mu;
  static Rng rng(uint64_t(std::random_device{}()) ^
                 uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()));
  static const char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string id = prefix;
  std::lock_guard<std::mutex> lock(mu);
  for (int i = 0; i < 24; ++i) id += kAlphabet[rng.below(sizeof(kAlphabet) - 1)];
  return id;
}

std::string request_api_key(const httplib::Request& req) {
  std::string auth = req.get_header_value("Authorization");
  const std::string bearer = "Bearer ";
  if (auth.size() > bearer.size() && auth.compare(0, bearer.size(), bearer) == 0) return auth.substr(bearer.size());
  return req.get_header_value("x-api-key");
}

bool constant_time_equals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string access_log_line(const httplib::Request& req, const httplib::Response& res) {
  size_t bytes = res.body.size();
  return cat(req.method, " ", req.path, " ", res.status, " ", bytes, "b from ", req.remote_addr);
}

void install_common_handlers(httplib::Server& svr, size_t max_body_bytes) {
  svr.set_payload_max_length(max_body_bytes);
  svr.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    // Handlers that answered already wrote their own error body; fill only the empty ones
    // (unknown route, body too large, bad request line).
    if (!res.body.empty() || res.is_chunked_content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg = res.status == 404   ? cat("no route for ", req.method, " ", req.path)
                      : res.status == 413 ? "request body too large"
                                          : cat("HTTP ", res.status);
    send_error(res, HttpError(res.status, msg), error_style_for_path(req.path));
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    log_error("unhandled exception in ", req.method, " ", req.path, ": ", exception_message(ep));
    send_error(res, HttpError(500, "internal server error"), error_style_for_path(req.path));
  });
  svr.set_logger([](const httplib::Request& req, const httplib::Response& res) { log_info(access_log_line(req, res)); });
}

}  // namespace brisk::server
