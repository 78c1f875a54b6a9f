// The studio's /api routes on cpp-httplib. Every route is declared in one table with its access
// level, so the authorization check cannot be forgotten and tests can enumerate the table.
//
//   Public          GET /api/health, POST /api/auth/login
//   RefreshToken    POST /api/auth/refresh (the refresh token in the body is the credential)
//   UserAnyState    Bearer access token, allowed while a password change is pending
//                   (POST /api/auth/password, POST /api/auth/logout)
//   User            Bearer access token, and no pending password change (else 403)
//
// /v1/* (the inference API, mounted by openai_routes) is authorised with API keys through
// authorize_api_key().
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/auth.h"
#include "server/path_policy.h"
#include "server/run_manager.h"
#include "server/store.h"

namespace brisk::server {

enum class Access { Public, RefreshToken, UserAnyState, User };

struct RouteInfo {
  std::string method;   // GET, POST, DELETE, PATCH
  std::string pattern;  // httplib regex, e.g. R"(/api/keys/(\d+))"
  Access access;
};

// Largest request body the studio accepts on /api (uploads get their own streamed route).
constexpr size_t kMaxApiBodyBytes = 1 << 20;
// Largest declared body on /v1/* (long chat histories), as `brisk serve`'s default.
constexpr uint64_t kMaxInferenceBodyBytes = uint64_t(16) << 20;

// `{"error":{"message","type","code"}}` with the given status.
void send_json_error(httplib::Response& res, int status, const std::string& type, const std::string& code,
                     const std::string& message);

class StudioRoutes {
 public:
  // `runs` may be null (no training: the run routes answer 503).
  StudioRoutes(Store& store, AuthService& auth, RunManager* runs = nullptr);

  // Registers every route of routes() plus the JSON error/exception handlers and the request
  // size limit on `server`.
  void mount(httplib::Server& server);

  // The route table (method, pattern, access) as mounted.
  const std::vector<RouteInfo>& routes() const { return infos_; }

  // Adds a route to the table (before mount()); handlers may throw AuthError for a client error
  // (its status and code are sent) and anything else for a 500. Route groups in other files
  // (studio_library, studio_datasets, studio_exports) register themselves through this, so the
  // credential check and the route-table tests cover them too.
  using UserHandler = std::function<void(const httplib::Request&, httplib::Response&, const User&)>;
  void add(const std::string& method, const std::string& pattern, Access access, UserHandler handler);
  // A POST route whose body is not buffered: the handler reads it through `reader` (streamed
  // uploads). Same credential check as add().
  using UploadHandler = std::function<void(const httplib::Request&, httplib::Response&, const httplib::ContentReader&,
                                           const User&)>;
  void add_upload(const std::string& pattern, Access access, UploadHandler handler);
  // Paths in run configs (base_model, dataset, output_dir) are checked against this when set.
  void set_path_policy(const PathPolicy* policy) { paths_ = policy; }
  // Largest upload accepted on the streamed route at exactly `path`; every other route keeps
  // kMaxApiBodyBytes (checked on Content-Length before the body is read).
  void allow_large_uploads(std::string path, size_t max_bytes) {
    upload_path_ = std::move(path);
    max_upload_bytes_ = max_bytes;
  }

  // For /v1/*: true when the request carries a valid API key in `Authorization: Bearer
  // brisk_...` or `x-api-key: brisk_...` (updates the key's last_used).
  bool authorize_api_key(const httplib::Request& req);

 private:

  void login(const httplib::Request&, httplib::Response&);
  void refresh(const httplib::Request&, httplib::Response&);
  void logout(const httplib::Request&, httplib::Response&, const User&);
  void change_password(const httplib::Request&, httplib::Response&, const User&);
  void me(const httplib::Request&, httplib::Response&, const User&);
  void list_keys(const httplib::Request&, httplib::Response&, const User&);
  void create_key(const httplib::Request&, httplib::Response&, const User&);
  void delete_key(const httplib::Request&, httplib::Response&, const User&);
  void system_info(const httplib::Request&, httplib::Response&, const User&);
  void list_runs(const httplib::Request&, httplib::Response&, const User&);
  void create_run(const httplib::Request&, httplib::Response&, const User&);
  void get_run(const httplib::Request&, httplib::Response&, const User&);
  void run_metrics(const httplib::Request&, httplib::Response&, const User&);
  void run_events(const httplib::Request&, httplib::Response&, const User&);
  void stop_run(const httplib::Request&, httplib::Response&, const User&);
  void resume_run(const httplib::Request&, httplib::Response&, const User&);
  void rename_run(const httplib::Request&, httplib::Response&, const User&);
  void delete_run(const httplib::Request&, httplib::Response&, const User&);
  RunManager& runs();
  void confine_run_paths(nlohmann::json& cfg) const;

  void guarded(Access access, const httplib::Request& req, httplib::Response& res,
               const std::function<void(const User&)>& body);

  struct Route {
    RouteInfo info;
    httplib::Server::Handler handler;                         // GET, DELETE
    httplib::Server::HandlerWithContentReader reader_handler;  // POST, PUT, PATCH, uploads
  };
  Store& store_;
  AuthService& auth_;
  RunManager* runs_;
  const PathPolicy* paths_ = nullptr;
  std::string upload_path_;
  size_t max_upload_bytes_ = 0;
  std::vector<Route> table_;
  std::vector<RouteInfo> infos_;
};

// Helpers for route handlers in the studio's files; bad input throws AuthError 400.
nlohmann::json parse_json_body(const httplib::Request& req);           // a JSON object
std::string required_string(const nlohmann::json& body, const char* key);
int64_t path_id(const httplib::Request& req);                           // matches[1] as an id
void send_json_status(httplib::Response& res, int status, const nlohmann::json& body);

// Host facts for GET /api/system: CPU model and threads, RAM, GPUs (CUDA builds), version.
nlohmann::json system_info_json();

}  // namespace brisk::server
