// HTTP plumbing shared by `brisk serve` and `brisk studio`: JSON bodies, error objects in the
// OpenAI and Anthropic shapes, Server-Sent Events, request ids, API-key checks and access logs
// that never contain secrets.
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace brisk::server {

using json = nlohmann::ordered_json;

// Request bodies above this are refused with 413 before they are read (serve's default).
constexpr size_t kDefaultMaxBodyBytes = size_t(16) << 20;

// An error to answer with: HTTP status, OpenAI error type ("invalid_request_error",
// "authentication_error", "not_found_error", "server_error", ...), the offending parameter
// (may be empty) and a machine-readable code (may be empty).
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, std::string message, std::string param = "", std::string code = "",
            std::string type = "");
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string type_, param_, code_;
};

// Default error type for a status: 400/413/422 invalid_request_error, 401 authentication_error,
// 403 permission_error, 404 not_found_error, 429 rate_limit_error, 5xx server_error / api_error.
std::string openai_error_type(int status);
std::string anthropic_error_type(int status);

// {"error":{"message","type","param","code"}} (param/code null when empty).
json openai_error_body(const HttpError& e);
// {"type":"error","error":{"type","message"}}.
json anthropic_error_body(const HttpError& e);

enum class ErrorStyle { OpenAI, Anthropic };
// Anthropic style on /v1/messages (and below it), OpenAI style elsewhere.
ErrorStyle error_style_for_path(const std::string& path);
void send_error(httplib::Response& res, const HttpError& e, ErrorStyle style);
void send_json(httplib::Response& res, const json& body, int status = 200);

// Parses the request body as a JSON object. Malformed JSON, or any other top-level value: 400.
json parse_json_object(const httplib::Request& req);

// Typed accessors for DTO parsing: a missing key or JSON null gives the fallback; a present key
// of the wrong type is a 400 naming the parameter.
std::string get_string(const json& obj, const char* key, const std::string& fallback = "");
double get_number(const json& obj, const char* key, double fallback);
int64_t get_int(const json& obj, const char* key, int64_t fallback);
bool get_bool(const json& obj, const char* key, bool fallback);

// "data: <payload>\n\n" (payload must be one line: serialized JSON is) and, with an event name,
// "event: <name>\ndata: <payload>\n\n".
std::string sse_data(const std::string& payload);
std::string sse_event(const std::string& event, const std::string& payload);

// A random id with a prefix: "chatcmpl-", "cmpl-", "msg_", "toolu_", "call_" + 24 hex/alnum chars.
std::string new_request_id(const std::string& prefix);

// The API key a client sent: "Authorization: Bearer KEY" or "x-api-key: KEY" ("" when none).
std::string request_api_key(const httplib::Request& req);
// Compares in time that depends only on the lengths, so a key cannot be guessed byte by byte.
bool constant_time_equals(const std::string& a, const std::string& b);

// One access-log line: "METHOD PATH STATUS BYTESb from IP" (no headers, no query string, no body:
// secrets travel in headers and sometimes in query strings).
std::string access_log_line(const httplib::Request& req, const httplib::Response& res);

// Installs: an error handler that gives every empty-bodied 4xx/5xx (404 unknown route, 413 body
// too large, ...) a JSON error body in the path's style; an exception handler that answers 500
// without crashing; the access log (log_info); the body size limit.
void install_common_handlers(httplib::Server& svr, size_t max_body_bytes = kDefaultMaxBodyBytes);

}  // namespace brisk::server
