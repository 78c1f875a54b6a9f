// The studio's /api routes over real HTTP (in-process server on a free port): every non-public
// route refuses requests without credentials, forced password change, API keys for /v1, JSON
// errors, body limits, rate limiting.
#include <gtest/gtest.h>

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "common/test_util.h"
#include "server/studio_datasets.h"
#include "server/studio_exports.h"
#include "server/studio_library.h"
#include "server/studio_routes.h"

using namespace brisk;
using namespace brisk::server;
using json = nlohmann::json;

namespace {

struct Studio {
  brisk::testing::TempDir dir;
  Store store{dir.path + "/brisk.db"};
  AuthService auth{store, dir.path};
  StudioRoutes routes{store, auth};
  // Every route group brisk studio mounts, so the table-wide tests below cover them all.
  PathPolicy paths{store, dir.path};
  InferenceService inference;
  ExportManager exports{store, paths};
  httplib::Server srv;
  std::thread thread;
  int port = 0;
  std::string admin_password;

  Studio() {
    admin_password = *auth.bootstrap_admin();
    routes.set_path_policy(&paths);
    add_library_routes(routes, store, paths, &inference);
    add_dataset_routes(routes, store, paths, kDefaultMaxUploadBytes);
    routes.allow_large_uploads("/api/datasets", kDefaultMaxUploadBytes);
    add_export_routes(routes, exports);
    routes.mount(srv);
    // Stand-in for the /v1 mount: what openai_routes will do with authorize_api_key.
    srv.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      if (!routes.authorize_api_key(req))
        return send_json_error(res, 401, "authentication_error", "invalid_api_key", "invalid API key");
      res.set_content(R"({"data":[]})", "application/json");
    });
    port = srv.bind_to_any_port("127.0.0.1");
    EXPECT_GT(port, 0);
    thread = std::thread([this] { srv.listen_after_bind(); });
    for (int i = 0; i < 500 && !srv.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~Studio() {
    srv.stop();
    thread.join();
  }

  httplib::Result call(const std::string& method, const std::string& path, const std::string& body = "",
                       const std::string& bearer = "", httplib::Headers headers = {}) {
    httplib::Client cli("127.0.0.1", port);
    if (!bearer.empty()) headers.emplace("Authorization", "Bearer " + bearer);
    if (method == "GET") return cli.Get(path.c_str(), headers);
    if (method == "DELETE") return cli.Delete(path.c_str(), headers);
    if (method == "PATCH") return cli.Patch(path.c_str(), headers, body, "application/json");
    if (method == "PUT") return cli.Put(path.c_str(), headers, body, "application/json");
    return cli.Post(path.c_str(), headers, body, "application/json");
  }
  json login(const std::string& user, const std::string& pw) {
    auto r = call("POST", "/api/auth/login", json{{"username", user}, {"password", pw}}.dump());
    EXPECT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body);
  }
  // Logs in as admin and replaces the bootstrap password; returns the new session.
  json ready_admin() {
    json t = login("admin", admin_password);
    auto r = call("POST", "/api/auth/password", json{{"old", admin_password}, {"new", "correct-horse-battery"}}.dump(),
                  t["access_token"]);
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body);
  }
};

// A concrete path for a route pattern: every capture group becomes "1".
std::string sample_path(const std::string& pattern) {
  return std::regex_replace(pattern, std::regex(R"(\([^)]*\))"), "1");
}

void expect_error(const httplib::Result& r, int status, const std::string& type, const std::string& code = "") {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
  EXPECT_EQ(j["error"]["type"], type) << r->body;
  EXPECT_TRUE(j["error"]["message"].is_string() && !j["error"]["message"].get<std::string>().empty()) << r->body;
  if (!code.empty()) EXPECT_EQ(j["error"]["code"], code) << r->body;
}

}  // namespace

TEST(ServerRoutes, OnlyHealthAndLoginArePublic) {
  Studio s;
  std::set<std::string> pub;
  for (auto& r : s.routes.routes())
    if (r.access == Access::Public) pub.insert(r.method + " " + r.pattern);
  EXPECT_EQ(pub, (std::set<std::string>{"GET /api/health", "POST /api/auth/login"}));
  auto h = s.call("GET", "/api/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
}

TEST(ServerRoutes, EveryNonPublicRouteNeedsCredentials) {
  Studio s;
  json stale = s.login("admin", s.admin_password);  // must change password
  std::string forged = stale["access_token"].get<std::string>();
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  int checked = 0;
  for (auto& r : s.routes.routes()) {
    if (r.access == Access::Public) continue;
    std::string path = sample_path(r.pattern);
    SCOPED_TRACE(r.method + " " + path);
    expect_error(s.call(r.method, path, "{}"), 401, "authentication_error");
    expect_error(s.call(r.method, path, "{}", forged), 401, "authentication_error");
    expect_error(s.call(r.method, path, "{}", "brisk_notatoken"), 401, "authentication_error");
    if (r.access == Access::User)  // a valid token with the password change pending
      expect_error(s.call(r.method, path, "{}", stale["access_token"]), 403, "permission_error",
                   "password_change_required");
    ++checked;
  }
  EXPECT_GE(checked, 8);
}

TEST(ServerRoutes, PasswordChangeUnlocksTheApi) {
  Studio s;
  json t = s.ready_admin();
  EXPECT_FALSE(t["must_change_password"].get<bool>());
  auto me = s.call("GET", "/api/me", "", t["access_token"]);
  ASSERT_EQ(me->status, 200) << me->body;
  EXPECT_EQ(json::parse(me->body)["name"], "admin");
  auto sys = s.call("GET", "/api/system", "", t["access_token"]);
  ASSERT_EQ(sys->status, 200) << sys->body;
  json sj = json::parse(sys->body);
  EXPECT_EQ(sj["version"], BRISK_VERSION);
  EXPECT_GT(sj["cpu"]["threads"].get<int>(), 0);
  EXPECT_GT(sj["ram"]["total_bytes"].get<int64_t>(), 0);
  EXPECT_TRUE(sj["gpus"].is_array());
  // Weak new password refused with a JSON error.
  expect_error(s.call("POST", "/api/auth/password", json{{"old", "correct-horse-battery"}, {"new", "short"}}.dump(),
                      t["access_token"]),
               400, "invalid_request_error", "weak_password");
}

TEST(ServerRoutes, RefreshAndLogoutOverHttp) {
  Studio s;
  json t = s.ready_admin();
  auto r = s.call("POST", "/api/auth/refresh", json{{"refresh_token", t["refresh_token"]}}.dump());
  ASSERT_EQ(r->status, 200) << r->body;
  json t2 = json::parse(r->body);
  expect_error(s.call("POST", "/api/auth/refresh", json{{"refresh_token", t["refresh_token"]}}.dump()), 401,
               "authentication_error", "refresh_token_reused");
  expect_error(s.call("POST", "/api/auth/refresh", json{{"refresh_token", t2["refresh_token"]}}.dump()), 401,
               "authentication_error");
  json t3 = s.login("admin", "correct-horse-battery");
  auto lo = s.call("POST", "/api/auth/logout", json{{"refresh_token", t3["refresh_token"]}}.dump(), t3["access_token"]);
  EXPECT_EQ(lo->status, 204) << lo->body;
  expect_error(s.call("POST", "/api/auth/refresh", json{{"refresh_token", t3["refresh_token"]}}.dump()), 401,
               "authentication_error");
}

TEST(ServerRoutes, ApiKeysAuthoriseV1UntilRevoked) {
  Studio s;
  json t = s.ready_admin();
  std::string at = t["access_token"];
  auto c = s.call("POST", "/api/keys", json{{"name", "open-webui"}}.dump(), at);
  ASSERT_EQ(c->status, 201) << c->body;
  json key = json::parse(c->body);
  std::string k = key["key"];
  EXPECT_EQ(k.rfind("brisk_", 0), 0u);

  auto list = s.call("GET", "/api/keys", "", at);
  ASSERT_EQ(list->status, 200);
  EXPECT_EQ(list->body.find(k), std::string::npos) << "the full key was shown twice";
  EXPECT_EQ(json::parse(list->body)["keys"][0]["prefix"], k.substr(0, 12));

  EXPECT_EQ(s.call("GET", "/v1/models", "", k)->status, 200);
  EXPECT_EQ(s.call("GET", "/v1/models", "", "", {{"x-api-key", k}})->status, 200);
  expect_error(s.call("GET", "/v1/models"), 401, "authentication_error");
  expect_error(s.call("GET", "/v1/models", "", at), 401, "authentication_error");  // an access token is not a key

  auto d = s.call("DELETE", "/api/keys/" + std::to_string(key["id"].get<int64_t>()), "", at);
  EXPECT_EQ(d->status, 204) << d->body;
  expect_error(s.call("GET", "/v1/models", "", k), 401, "authentication_error");
  expect_error(s.call("DELETE", "/api/keys/999999", "", at), 404, "not_found_error");
  expect_error(s.call("POST", "/api/keys", R"({"name": 5})", at), 400, "invalid_request_error");
}

TEST(ServerRoutes, BadRequestsGetJsonErrors) {
  Studio s;
  expect_error(s.call("POST", "/api/auth/login", "{not json"), 400, "invalid_request_error");
  expect_error(s.call("POST", "/api/auth/login", "[1,2]"), 400, "invalid_request_error");
  expect_error(s.call("POST", "/api/auth/login", R"({"username":"admin"})"), 400, "invalid_request_error");
  expect_error(s.call("GET", "/api/nope"), 404, "not_found_error");
  std::string huge(kMaxApiBodyBytes + 1, 'x');
  expect_error(s.call("POST", "/api/auth/login", huge), 413, "request_too_large");
}

TEST(ServerRoutes, LoginRateLimitAnswers429WithRetryAfter) {
  Studio s;
  for (int i = 0; i < 5; ++i)
    expect_error(s.call("POST", "/api/auth/login", json{{"username", "admin"}, {"password", "wrong-" + std::to_string(i)}}.dump()),
                 401, "authentication_error", "invalid_credentials");
  auto r = s.call("POST", "/api/auth/login", json{{"username", "admin"}, {"password", s.admin_password}}.dump());
  expect_error(r, 429, "rate_limit_error", "rate_limited");
  int retry = std::stoi(r->get_header_value("Retry-After"));
  EXPECT_GT(retry, 0);
  EXPECT_LE(retry, 300);
}
