#include "server/studio_routes.h"

#include <strings.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "train/train_config.h"
#ifdef BRISK_HAVE_CUDA
#include "backend/cuda/device_info.h"
#endif

namespace brisk::server {
namespace {

using json = nlohmann::json;
using httplib::Request;
using httplib::Response;

const char* error_type_for(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 409: return "conflict_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

[[noreturn]] void bad_request(const std::string& msg) { throw AuthError(400, "invalid_request", msg); }

json parse_body(const Request& req) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) bad_request("request body is not valid JSON");
  if (!body.is_object()) bad_request("request body must be a JSON object");
  return body;
}

std::string string_field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_string()) bad_request(cat("\"", key, "\" (string) is required"));
  return it->get<std::string>();
}

// The token of `Authorization: Bearer <token>` (scheme case-insensitive), or "".
std::string bearer_token(const Request& req) {
  std::string h = req.get_header_value("Authorization");
  if (h.size() < 7 || strncasecmp(h.c_str(), "Bearer ", 7) != 0) return "";
  size_t start = h.find_first_not_of(' ', 7);
  return start == std::string::npos ? "" : h.substr(start);
}

void send_json(Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

json tokens_json(const TokenPair& t) {
  return {{"access_token", t.access_token},
          {"refresh_token", t.refresh_token},
          {"token_type", "Bearer"},
          {"expires_in", t.expires_in},
          {"must_change_password", t.must_change_password}};
}

json key_json(const ApiKey& k) {
  json j = {{"id", k.id},       {"name", k.name},       {"prefix", k.prefix}, {"created", k.created},
            {"expires", nullptr}, {"last_used", nullptr}, {"revoked", k.revoked}};
  if (k.expires) j["expires"] = k.expires;
  if (k.last_used) j["last_used"] = k.last_used;
  return j;
}


json run_json(const Run& r) {
  json cfg = json::parse(r.config_json, nullptr, false);
  return {{"id", r.id},
          {"name", r.name},
          {"status", r.status},
          {"config", cfg.is_discarded() ? json::object() : cfg},
          {"output_dir", r.output_dir},
          {"created", r.created},
          {"started", r.started ? json(r.started) : json(nullptr)},
          {"finished", r.finished ? json(r.finished) : json(nullptr)},
          {"error", r.error.empty() ? json(nullptr) : json(r.error)},
          {"last_checkpoint", r.last_checkpoint.empty() ? json(nullptr) : json(r.last_checkpoint)},
          {"resumable", (r.status == "stopped" || r.status == "failed") && !r.last_checkpoint.empty()}};
}

}  // namespace

json parse_json_body(const Request& req) { return parse_body(req); }
std::string required_string(const json& body, const char* key) { return string_field(body, key); }
void send_json_status(Response& res, int status, const json& body) { send_json(res, status, body); }

int64_t path_id(const Request& req) {
  try {
    return std::stoll(req.matches[1].str());
  } catch (const std::exception&) {
    bad_request("bad id in the path");
  }
}

void send_json_error(Response& res, int status, const std::string& type, const std::string& code,
                     const std::string& message) {
  send_json(res, status, {{"error", {{"message", message}, {"type", type}, {"code", code}}}});
}

StudioRoutes::StudioRoutes(Store& store, AuthService& auth, RunManager* runs)
    : store_(store), auth_(auth), runs_(runs) {
  auto plain = [this](void (StudioRoutes::*fn)(const Request&, Response&)) {
    return [this, fn](const Request& q, Response& r, const User&) { (this->*fn)(q, r); };
  };
  auto user = [this](void (StudioRoutes::*fn)(const Request&, Response&, const User&)) {
    return [this, fn](const Request& q, Response& r, const User& u) { (this->*fn)(q, r, u); };
  };
  add("GET", "/api/health", Access::Public,
      [](const Request&, Response& res, const User&) { send_json(res, 200, {{"status", "ok"}, {"version", BRISK_VERSION}}); });
  add("POST", "/api/auth/login", Access::Public, plain(&StudioRoutes::login));
  add("POST", "/api/auth/refresh", Access::RefreshToken, plain(&StudioRoutes::refresh));
  add("POST", "/api/auth/logout", Access::UserAnyState, user(&StudioRoutes::logout));
  add("POST", "/api/auth/password", Access::UserAnyState, user(&StudioRoutes::change_password));
  add("GET", "/api/me", Access::User, user(&StudioRoutes::me));
  add("GET", "/api/keys", Access::User, user(&StudioRoutes::list_keys));
  add("POST", "/api/keys", Access::User, user(&StudioRoutes::create_key));
  add("DELETE", R"(/api/keys/(\d+))", Access::User, user(&StudioRoutes::delete_key));
  add("GET", "/api/system", Access::User, user(&StudioRoutes::system_info));
  add("GET", "/api/runs", Access::User, user(&StudioRoutes::list_runs));
  add("POST", "/api/runs", Access::User, user(&StudioRoutes::create_run));
  add("GET", R"(/api/runs/(\d+))", Access::User, user(&StudioRoutes::get_run));
  add("GET", R"(/api/runs/(\d+)/metrics)", Access::User, user(&StudioRoutes::run_metrics));
  add("GET", R"(/api/runs/(\d+)/events)", Access::User, user(&StudioRoutes::run_events));
  add("POST", R"(/api/runs/(\d+)/stop)", Access::User, user(&StudioRoutes::stop_run));
  add("POST", R"(/api/runs/(\d+)/resume)", Access::User, user(&StudioRoutes::resume_run));
  add("PATCH", R"(/api/runs/(\d+))", Access::User, user(&StudioRoutes::rename_run));
  add("DELETE", R"(/api/runs/(\d+))", Access::User, user(&StudioRoutes::delete_run));
}

// Authenticates per `access` and runs `body(user)`, turning AuthError into its status and any
// other exception into a logged 500.
void StudioRoutes::guarded(Access access, const Request& req, Response& res, const std::function<void(const User&)>& body) {
  try {
    User user;
    if (access == Access::User || access == Access::UserAnyState) {
      std::string token = bearer_token(req);
      if (token.empty())
        return send_json_error(res, 401, "authentication_error", "missing_credentials",
                               "this route needs `Authorization: Bearer <access token>` (POST /api/auth/login)");
      user = auth_.authenticate_access(token);
      if (access == Access::User && user.must_change_password)
        return send_json_error(res, 403, "permission_error", "password_change_required",
                               "change your initial password first: POST /api/auth/password {old, new}");
    }
    body(user);
  } catch (const AuthError& e) {
    if (e.retry_after > 0) res.set_header("Retry-After", std::to_string(e.retry_after));
    send_json_error(res, e.status, error_type_for(e.status), e.code, e.what());
  } catch (const std::exception& e) {
    // Not a client error: a bug or the database failing. The message may name internals,
    // so it is logged, not sent.
    log_error("studio: ", req.method, " ", req.path, ": ", e.what());
    send_json_error(res, 500, "server_error", "internal_error", "internal server error (see the server log)");
  }
}

void StudioRoutes::add(const std::string& method, const std::string& pattern, Access access, UserHandler handler) {
  if (method == "POST" || method == "PUT" || method == "PATCH") {
    // Bodies are read here, not by httplib, whose single body limit must be the upload's: up to
    // kMaxApiBodyBytes is kept, the rest is read and dropped (as httplib does for its own 413)
    // so the client gets the answer instead of a connection reset.
    auto wrapped = [this, access, handler = std::move(handler)](const Request& req, Response& res,
                                                                const httplib::ContentReader& reader) {
      Request full = req;
      bool too_large = false;
      reader([&](const char* data, size_t len) {
        if (too_large || full.body.size() + len > kMaxApiBodyBytes) too_large = true;
        else full.body.append(data, len);
        return true;
      });
      if (too_large)
        return send_json_error(res, 413, "request_too_large", "http_error",
                               cat("request body larger than ", kMaxApiBodyBytes, " bytes"));
      guarded(access, full, res, [&](const User& user) { handler(full, res, user); });
    };
    table_.push_back({{method, pattern, access}, nullptr, std::move(wrapped)});
  } else {
    auto wrapped = [this, access, handler = std::move(handler)](const Request& req, Response& res) {
      guarded(access, req, res, [&](const User& user) { handler(req, res, user); });
    };
    table_.push_back({{method, pattern, access}, std::move(wrapped), nullptr});
  }
  infos_.push_back(table_.back().info);
}

void StudioRoutes::add_upload(const std::string& pattern, Access access, UploadHandler handler) {
  // Credentials are checked before the body is read: an unauthenticated upload costs nothing.
  auto wrapped = [this, access, handler = std::move(handler)](const Request& req, Response& res,
                                                              const httplib::ContentReader& reader) {
    guarded(access, req, res, [&](const User& user) { handler(req, res, reader, user); });
  };
  table_.push_back({{"POST", pattern, access}, nullptr, std::move(wrapped)});
  infos_.push_back(table_.back().info);
}

void StudioRoutes::mount(httplib::Server& server) {
  for (auto& r : table_) {
    const std::string& m = r.info.method;
    if (m == "GET") server.Get(r.info.pattern, r.handler);
    else if (m == "POST") server.Post(r.info.pattern, r.reader_handler);
    else if (m == "DELETE") server.Delete(r.info.pattern, r.handler);
    else if (m == "PATCH") server.Patch(r.info.pattern, r.reader_handler);
    else if (m == "PUT") server.Put(r.info.pattern, r.reader_handler);
    else BRISK_ASSERT(false, "unknown method ", m);
  }
  // httplib has one body limit per server, which must be the upload's. The /api routes with
  // bodies read them through add()'s capped reader; what else may carry a body (GET/DELETE
  // here, /v1/* mounted beside us) is refused here on its declared length before it is read.
  server.set_payload_max_length(std::max(kMaxApiBodyBytes, max_upload_bytes_));
  server.set_pre_routing_handler([this](const Request& req, Response& res) {
    if (!req.has_header("Content-Length")) return httplib::Server::HandlerResponse::Unhandled;
    uint64_t n = std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10);
    bool body_route = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
    uint64_t limit = req.path.rfind("/v1/", 0) == 0 ? kMaxInferenceBodyBytes
                     : body_route                   ? UINT64_MAX  // capped while read, see add()
                                                    : kMaxApiBodyBytes;
    if (!upload_path_.empty() && req.path == upload_path_) limit = UINT64_MAX;  // its own limit
    if (n <= limit) return httplib::Server::HandlerResponse::Unhandled;
    send_json_error(res, 413, "request_too_large", "http_error", cat("request body larger than ", limit, " bytes"));
    return httplib::Server::HandlerResponse::Handled;
  });
  // httplib calls this for every response >= 400; only fill the ones without a body (no route,
  // body too large, malformed request), never overwrite a handler's own error.
  server.set_error_handler(httplib::Server::HandlerWithResponse([](const Request&, Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg = res.status == 404 ? "no such route"
                      : res.status == 413 ? cat("request body larger than ", kMaxApiBodyBytes, " bytes")
                                          : cat("HTTP ", res.status);
    send_json_error(res, res.status, error_type_for(res.status), res.status == 404 ? "not_found" : "http_error", msg);
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler([](const Request& req, Response& res, std::exception_ptr ep) {
    log_error("studio: ", req.method, " ", req.path, ": ", exception_message(ep));
    send_json_error(res, 500, "server_error", "internal_error", "internal server error (see the server log)");
  });
  // Method, path (without the query string) and status only: never headers or bodies, which
  // carry passwords, tokens and keys.
  server.set_logger([](const Request& req, const Response& res) {
    log_debug("studio: ", req.method, " ", req.path, " -> ", res.status);
  });
}

bool StudioRoutes::authorize_api_key(const Request& req) {
  std::string key = bearer_token(req);
  if (key.empty()) key = req.get_header_value("x-api-key");
  return !key.empty() && auth_.verify_api_key(key).has_value();
}

// --- handlers --------------------------------------------------------------------------------

void StudioRoutes::login(const Request& req, Response& res) {
  json body = parse_body(req);
  TokenPair t = auth_.login(string_field(body, "username"), string_field(body, "password"), req.remote_addr);
  send_json(res, 200, tokens_json(t));
}

void StudioRoutes::refresh(const Request& req, Response& res) {
  json body = json::parse(req.body, nullptr, false);
  if (!body.is_object() || !body.contains("refresh_token") || !body["refresh_token"].is_string())
    throw AuthError(401, "missing_credentials", "this route needs {\"refresh_token\": \"...\"}");
  send_json(res, 200, tokens_json(auth_.refresh(body["refresh_token"].get<std::string>())));
}

void StudioRoutes::logout(const Request& req, Response& res, const User& user) {
  json body = parse_body(req);
  auth_.logout(user.id, string_field(body, "refresh_token"));
  res.status = 204;
}

void StudioRoutes::change_password(const Request& req, Response& res, const User& user) {
  json body = parse_body(req);
  TokenPair t = auth_.change_password(user.id, string_field(body, "old"), string_field(body, "new"));
  send_json(res, 200, tokens_json(t));
}

void StudioRoutes::me(const Request&, Response& res, const User& user) {
  send_json(res, 200, {{"id", user.id}, {"name", user.name}, {"created", user.created},
                       {"must_change_password", user.must_change_password}});
}

void StudioRoutes::list_keys(const Request&, Response& res, const User& user) {
  json keys = json::array();
  for (auto& k : auth_.list_api_keys(user.id)) keys.push_back(key_json(k));
  send_json(res, 200, {{"keys", keys}});
}

void StudioRoutes::create_key(const Request& req, Response& res, const User& user) {
  json body = parse_body(req);
  std::string name = string_field(body, "name");
  int64_t expires = 0;
  if (auto it = body.find("expires_in_days"); it != body.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() <= 0 || it->get<double>() > 3650)
      bad_request("\"expires_in_days\" must be a number in (0, 3650]");
    expires = auth_.clock() + int64_t(it->get<double>() * 86400);
  }
  CreatedApiKey k = auth_.create_api_key(user.id, name, expires);
  json j = key_json(k.info);
  j["key"] = k.key;  // the only time the full key is ever shown
  send_json(res, 201, j);
}

void StudioRoutes::delete_key(const Request& req, Response& res, const User& user) {
  int64_t id = path_id(req);
  if (!auth_.revoke_api_key(user.id, id)) throw AuthError(404, "not_found", cat("no API key ", id));
  res.status = 204;
}

void StudioRoutes::system_info(const Request&, Response& res, const User&) { send_json(res, 200, system_info_json()); }

// --- runs ------------------------------------------------------------------------------------

RunManager& StudioRoutes::runs() {
  if (!runs_) throw AuthError(503, "unavailable", "training runs are not available in this server");
  return *runs_;
}

void StudioRoutes::list_runs(const Request&, Response& res, const User&) {
  json out = json::array();
  for (auto& r : store_.list_runs()) out.push_back(run_json(r));
  send_json(res, 200, {{"runs", out}});
}

void StudioRoutes::create_run(const Request& req, Response& res, const User&) {
  json body = parse_body(req);
  auto cfg = body.find("config");
  if (cfg == body.end() || !cfg->is_object()) bad_request("\"config\" (object of training config keys) is required");
  std::string name = body.contains("name") ? string_field(body, "name") : "";
  if (paths_) confine_run_paths(*cfg);
  Run run;
  try {
    run = runs().submit(name, *cfg);
  } catch (const AuthError&) {
    throw;
  } catch (const Error& e) {
    bad_request(e.what());  // config errors name the key
  }
  send_json(res, 201, run_json(run));
}

// Every path a run reads must be inside a registered root and every path it writes inside the
// data dir; the config is rewritten with the canonical paths, so the trainer opens exactly what
// was checked.
void StudioRoutes::confine_run_paths(json& cfg) const {
  train::TrainConfig parsed;
  try {
    parsed = train::parse_train_config(cfg.dump(), "run config");
  } catch (const Error& e) {
    bad_request(e.what());
  }
  if (!parsed.base_model.empty()) cfg["base_model"] = paths_->readable(parsed.base_model);
  auto set_dataset_key = [&](const char* key, const std::string& value) {
    if (cfg["dataset"].is_object()) cfg["dataset"][key] = value;
    else cfg["dataset"] = value;  // the short form `dataset: PATH`
  };
  if (!parsed.dataset.path.empty()) set_dataset_key("path", paths_->readable(parsed.dataset.path));
  if (!parsed.dataset.eval_path.empty() && cfg["dataset"].is_object())
    set_dataset_key("eval_path", paths_->readable(parsed.dataset.eval_path));
  if (cfg.contains("output_dir")) cfg["output_dir"] = paths_->writable(parsed.output_dir);
}

void StudioRoutes::get_run(const Request& req, Response& res, const User&) {
  int64_t id = path_id(req);
  auto run = store_.run_by_id(id);
  if (!run) throw AuthError(404, "not_found", cat("no run ", id));
  send_json(res, 200, run_json(*run));
}

void StudioRoutes::run_metrics(const Request& req, Response& res, const User&) {
  int64_t id = path_id(req);
  if (!store_.run_by_id(id)) throw AuthError(404, "not_found", cat("no run ", id));
  json out = json::array();
  for (auto& m : store_.metrics_of_run(id)) {
    json j = json::parse(m.json, nullptr, false);
    out.push_back(j.is_discarded() ? json{{"step", m.step}} : j);
  }
  send_json(res, 200, {{"metrics", out}});
}

// Server-sent events: every stored event after Last-Event-ID (replay), then live ones, each with
// its sequence number as `id:`; the stream ends once the run has finished and all is sent.
void StudioRoutes::run_events(const Request& req, Response& res, const User&) {
  int64_t id = path_id(req);
  if (!store_.run_by_id(id)) throw AuthError(404, "not_found", cat("no run ", id));
  RunManager* mgr = &runs();
  int64_t last = 0;
  if (std::string h = req.get_header_value("Last-Event-ID"); !h.empty()) {
    try {
      last = std::max<int64_t>(0, std::stoll(h));
    } catch (const std::exception&) {
      bad_request("Last-Event-ID must be an event id");
    }
  }
  auto cursor = std::make_shared<int64_t>(last);
  auto idle_ms = std::make_shared<int>(0);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [this, mgr, id, cursor, idle_ms](size_t, httplib::DataSink& sink) {
    auto events = mgr->wait_events(id, *cursor, 1000);
    for (auto& e : events) {
      std::string msg = cat("id: ", e.seq, "\ndata: ", e.json, "\n\n");
      if (!sink.write(msg.data(), msg.size())) return false;  // client gone
      *cursor = e.seq;
    }
    if (!events.empty()) {
      *idle_ms = 0;
      return true;
    }
    auto run = store_.run_by_id(id);
    if (!run || RunManager::is_finished(run->status)) {
      sink.done();
      return true;
    }
    if ((*idle_ms += 1000) >= 15000) {  // keeps proxies from closing an idle stream
      *idle_ms = 0;
      static const char kKeepAlive[] = ": keep-alive\n\n";
      if (!sink.write(kKeepAlive, sizeof kKeepAlive - 1)) return false;
    }
    return true;
  });
}

void StudioRoutes::stop_run(const Request& req, Response& res, const User&) {
  int64_t id = path_id(req);
  if (!store_.run_by_id(id)) throw AuthError(404, "not_found", cat("no run ", id));
  if (!runs().stop(id)) throw AuthError(409, "not_active", cat("run ", id, " is neither queued nor running"));
  send_json(res, 202, run_json(*store_.run_by_id(id)));
}

void StudioRoutes::resume_run(const Request& req, Response& res, const User&) {
  int64_t id = path_id(req);
  if (!store_.run_by_id(id)) throw AuthError(404, "not_found", cat("no run ", id));
  if (!runs().resume(id)) throw AuthError(409, "not_resumable", cat("run ", id, " is not stopped or failed"));
  send_json(res, 202, run_json(*store_.run_by_id(id)));
}

void StudioRoutes::rename_run(const Request& req, Response& res, const User&) {
  int64_t id = path_id(req);
  json body = parse_body(req);
  std::string name = string_field(body, "name");
  if (name.empty() || name.size() > 200) bad_request("\"name\" must have 1 to 200 characters");
  if (!store_.rename_run(id, name)) throw AuthError(404, "not_found", cat("no run ", id));
  send_json(res, 200, run_json(*store_.run_by_id(id)));
}

// DELETE /api/runs/{id}?files=true also removes <data-dir>/runs/{id}.
void StudioRoutes::delete_run(const Request& req, Response& res, const User&) {
  int64_t id = path_id(req);
  if (!store_.run_by_id(id)) throw AuthError(404, "not_found", cat("no run ", id));
  std::string files = req.get_param_value("files");
  if (!runs().remove(id, files == "true" || files == "1"))
    throw AuthError(409, "run_active", cat("run ", id, " is queued or running; stop it first"));
  res.status = 204;
}

json system_info_json() {
  json cpu = {{"model", ""}, {"threads", std::thread::hardware_concurrency()}};
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) cpu["model"] = line.substr(line.find_first_not_of(' ', colon + 1));
      break;
    }
  }
  json ram = {{"total_bytes", int64_t(sysconf(_SC_PHYS_PAGES)) * int64_t(sysconf(_SC_PAGESIZE))},
              {"available_bytes", nullptr}};
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemAvailable:", 0) == 0) {
      std::istringstream is(line.substr(13));
      int64_t kb = 0;
      if (is >> kb) ram["available_bytes"] = kb * 1024;
    }
  }
  json gpus = json::array();
#ifdef BRISK_HAVE_CUDA
  for (auto& d : brisk::cuda::list_devices())
    gpus.push_back({{"index", d.index},
                    {"name", d.name},
                    {"compute_capability", cat(d.cc_major, ".", d.cc_minor)},
                    {"total_bytes", d.total_bytes},
                    {"free_bytes", d.free_bytes},
                    {"sm_count", d.sm_count}});
  bool cuda_built = true;
#else
  bool cuda_built = false;
#endif
  return {{"version", BRISK_VERSION}, {"cuda", cuda_built}, {"cpu", cpu}, {"ram", ram}, {"gpus", gpus}};
}

}  // namespace brisk::server
