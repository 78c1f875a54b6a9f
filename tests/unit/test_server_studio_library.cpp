// The studio's library routes over real HTTP (in-process server, tiny random model): path rules
// (traversal, symlinks, percent-encoding, absolute paths outside the roots), scanning, loading a
// model for /v1 and chatting with it through an API key, dataset upload / validation / preview,
// and export jobs.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/test_util.h"
#include "core/fs.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "model/init_model.h"
#include "model/lora.h"
#include "server/openai_routes.h"
#include "server/run_manager.h"
#include "server/studio_datasets.h"
#include "server/studio_exports.h"
#include "server/studio_library.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

using namespace brisk;
using namespace brisk::server;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += char(c);
    else out += cat("%", "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15]);
  }
  return out;
}

int status_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const AuthError& e) {
    return e.status;
  }
  return 200;
}

// <tmp>/data (the data dir), <tmp>/models (a scan folder once registered) holding a tiny qwen3
// model and a LoRA adapter for it, <tmp>/outside (never registered) with a secret and a model.
struct Library {
  brisk::testing::TempDir tmp;
  std::string data, models, base, adapter, outside;
  Library() {
    data = tmp.path + "/data";
    models = tmp.path + "/models";
    outside = tmp.path + "/outside";
    base = models + "/qwen3-tiny";
    adapter = models + "/adapters/a1";
    for (auto& d : {data, models, outside}) make_dirs(d);
    InitModelOptions o;
    o.arch = "qwen3";
    o.preset = "tiny";
    o.seed = 7;
    o.tokenizer_dir = brisk::testing::tokenizer_dir("qwen3");
    ModelConfig cfg = init_model(base, o);
    init_model(outside + "/model", o);
    LoraSpec spec;
    spec.r = 4;
    spec.targets = parse_target_modules({"all-linear"});
    save_peft_adapter(init_lora(cfg, spec, 3, true), cfg, adapter, base);
    write_file_atomic(outside + "/secret.txt", "secret");
    EXPECT_EQ(::symlink(outside.c_str(), (models + "/link-out").c_str()), 0);
    EXPECT_EQ(::symlink((outside + "/secret.txt").c_str(), (models + "/secret-link.gguf").c_str()), 0);
  }
};

struct Studio {
  Library lib;
  Store store{lib.data + "/brisk.db"};
  AuthService auth{store, lib.data};
  StudioRoutes routes{store, auth};
  PathPolicy paths{store, lib.data};
  InferenceService inference;
  ExportManager exports{store, paths};
  httplib::Server srv;
  std::thread thread;
  int port = 0;
  std::string token, api_key;

  explicit Studio(int64_t max_upload = kDefaultMaxUploadBytes) {
    std::string pw = *auth.bootstrap_admin();
    routes.set_path_policy(&paths);
    add_library_routes(routes, store, paths, &inference);
    add_dataset_routes(routes, store, paths, max_upload);
    routes.allow_large_uploads("/api/datasets", size_t(max_upload));
    add_export_routes(routes, exports);
    routes.mount(srv);
    mount_openai_routes(srv, inference, [this](const httplib::Request& r) { return routes.authorize_api_key(r); });
    port = srv.bind_to_any_port("127.0.0.1");
    EXPECT_GT(port, 0);
    thread = std::thread([this] { srv.listen_after_bind(); });
    for (int i = 0; i < 500 && !srv.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    json t = json::parse(post("/api/auth/login", json{{"username", "admin"}, {"password", pw}})->body);
    token = t["access_token"];
    auto r = post("/api/auth/password", json{{"old", pw}, {"new", "correct-horse-battery"}});
    token = json::parse(r->body)["access_token"];
    api_key = json::parse(post("/api/keys", json{{"name", "test"}})->body)["key"];
  }
  ~Studio() {
    inference.cancel_all();
    srv.stop();
    thread.join();
  }
  httplib::Headers auth_headers() const { return {{"Authorization", "Bearer " + token}}; }
  httplib::Result post(const std::string& path, const json& body) {
    httplib::Client cli("127.0.0.1", port);
    cli.set_read_timeout(60);
    return cli.Post(path.c_str(), token.empty() ? httplib::Headers{} : auth_headers(), body.dump(), "application/json");
  }
  httplib::Result get(const std::string& path) {
    httplib::Client cli("127.0.0.1", port);
    return cli.Get(path.c_str(), auth_headers());
  }
  httplib::Result del(const std::string& path) {
    httplib::Client cli("127.0.0.1", port);
    return cli.Delete(path.c_str(), auth_headers());
  }
  httplib::Result upload(const std::string& name, const std::string& content) {
    httplib::Client cli("127.0.0.1", port);
    return cli.Post(("/api/datasets?name=" + name).c_str(), auth_headers(), content, "application/octet-stream");
  }
  // Files in <data>/datasets, temp files included.
  size_t dataset_files() const {
    size_t n = 0;
    std::error_code ec;
    for (fs::directory_iterator it(lib.data + "/datasets", ec), end; !ec && it != end; it.increment(ec)) ++n;
    return n;
  }
};

void expect_status(const httplib::Result& r, int status, const std::string& code = "") {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  if (!code.empty()) {
    EXPECT_EQ(json::parse(r->body, nullptr, false)["error"]["code"], code) << r->body;
  }
}

const char* kChatRows =
    R"({"messages":[{"role":"user","content":"What is two plus two?"},{"role":"assistant","content":"Four, of course."}]})"
    "\n"
    R"({"messages":[{"role":"user","content":"Name a colour."},{"role":"assistant","content":"Vermilion."}]})"
    "\n"
    R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"}]})"
    "\n";

}  // namespace

TEST(ServerPaths, ReadableOnlyInsideRegisteredRoots) {
  Library lib;
  Store store(lib.data + "/brisk.db");
  PathPolicy p(store, lib.data);
  auto readable = [&](const std::string& path) { return status_of([&] { p.readable(path); }); };
  // Nothing registered yet: only the data dir.
  EXPECT_EQ(readable(lib.base), 403);
  EXPECT_EQ(readable(lib.data + "/brisk.db"), 200);
  store.add_scan_folder(lib.models);
  EXPECT_EQ(p.readable(lib.base + "/config.json"), PathPolicy::canonical(lib.base + "/config.json"));
  EXPECT_EQ(readable(lib.models + "/../outside/secret.txt"), 403);       // `..` climbing out
  EXPECT_EQ(readable(lib.models + "/adapters/../../outside/model"), 403);
  EXPECT_EQ(readable(lib.outside + "/secret.txt"), 403);                 // absolute path outside
  EXPECT_EQ(readable("/etc/passwd"), 403);
  EXPECT_EQ(readable(lib.models + "/link-out/secret.txt"), 403);         // directory symlink out
  EXPECT_EQ(readable(lib.models + "/secret-link.gguf"), 403);            // file symlink out
  EXPECT_EQ(readable(lib.models + "/%2e%2e/outside/secret.txt"), 404);   // no decoding: a literal name
  EXPECT_EQ(readable(lib.models + "/nope"), 404);
  EXPECT_EQ(readable("models/qwen3-tiny"), 400);                         // relative
  EXPECT_EQ(readable(""), 400);
  EXPECT_EQ(readable(lib.models + "/adapters/../qwen3-tiny"), 200);      // `..` that stays inside is fine
  // A sibling whose name starts with a root's name is not inside it.
  make_dirs(lib.models + "-evil");
  EXPECT_EQ(readable(lib.models + "-evil"), 403);
  EXPECT_TRUE(PathPolicy::is_inside("/a/b", "/a/b/c"));
  EXPECT_FALSE(PathPolicy::is_inside("/a/b", "/a/bc"));
  EXPECT_FALSE(PathPolicy::is_inside("/a/b", "/a"));
}

TEST(ServerPaths, WritableOnlyInsideTheDataDir) {
  Library lib;
  Store store(lib.data + "/brisk.db");
  store.add_scan_folder(lib.models);
  PathPolicy p(store, lib.data);
  auto writable = [&](const std::string& path) { return status_of([&] { p.writable(path); }); };
  EXPECT_EQ(p.writable(lib.data + "/outputs/run-a"), PathPolicy::canonical(lib.data) + "/outputs/run-a");
  EXPECT_EQ(writable(lib.data + "/outputs"), 403);           // the folder itself: a delete would take all
  EXPECT_EQ(writable(lib.data), 403);                        // the database and secrets live here
  EXPECT_EQ(writable(lib.data + "/runs/9/output"), 403);
  EXPECT_EQ(writable(lib.models + "/out"), 403);             // readable roots are not writable
  EXPECT_EQ(writable(lib.data + "/../outside/x"), 403);
  EXPECT_EQ(writable(lib.data + "/outputs/new/../../../outside/x"), 403);  // `..` in the part that does not exist
  make_dirs(lib.data + "/outputs");
  ASSERT_EQ(::symlink(lib.outside.c_str(), (lib.data + "/outputs/out-link").c_str()), 0);
  EXPECT_EQ(writable(lib.data + "/outputs/out-link/x"), 403);  // a symlink inside leading out
  EXPECT_EQ(writable("runs/x"), 400);
}

TEST(ServerLibrary, ScanFindsModelsAndAdaptersWithMetadata) {
  Studio s;
  expect_status(s.post("/api/scan-folders", {{"path", s.lib.outside + "/../outside"}}), 201);
  auto r = s.post("/api/scan-folders", {{"path", s.lib.models}});
  expect_status(r, 201);
  json j = json::parse(r->body);
  std::map<std::string, json> by_path;
  for (auto& m : j["models"]) by_path[m["path"]] = m;
  ASSERT_EQ(by_path.size(), 2u) << j.dump(1);  // the symlinked .gguf and the link-out folder are skipped
  json base = by_path[PathPolicy::canonical(s.lib.base)];
  EXPECT_EQ(base["kind"], "base");
  EXPECT_EQ(base["meta"]["arch"], "qwen3");
  ModelConfig cfg = io::load_model_config(s.lib.base);
  EXPECT_GT(base["meta"]["params"].get<int64_t>(), cfg.vocab_size * cfg.hidden_size);
  EXPECT_GT(base["meta"]["bytes"].get<int64_t>(), base["meta"]["params"].get<int64_t>());  // f32
  json ad = by_path[PathPolicy::canonical(s.lib.adapter)];
  EXPECT_EQ(ad["kind"], "adapter");
  EXPECT_EQ(ad["meta"]["r"], 4);
  EXPECT_FALSE(ad["meta"]["base_model"].get<std::string>().empty());

  expect_status(s.post("/api/models", {{"path", s.lib.outside + "/secret.txt"}}), 400, "not_a_model");
  expect_status(s.post("/api/models", {{"path", "/"}}), 403);
  auto m = s.post("/api/models", {{"path", s.lib.base}});
  expect_status(m, 201);
  EXPECT_EQ(json::parse(m->body)["kind"], "base");
  json listed = json::parse(s.get("/api/models")->body);
  EXPECT_EQ(listed["models"].size(), 1u);
  EXPECT_EQ(listed["scanned"].size(), 3u);  // two in models/, the model in outside/
  expect_status(s.del("/api/scan-folders?path=" + url_encode(s.lib.models)), 204);
  expect_status(s.del("/api/scan-folders?path=/nope"), 404);
}

TEST(ServerLibrary, LoadServesV1WithApiKeysAndRefusesPathsOutsideRoots) {
  Studio s;
  expect_status(s.post("/api/inference/load", {{"model", s.lib.base}}), 403, "path_not_allowed");
  expect_status(s.post("/api/inference/load", {{"model", s.lib.data + "/../models/qwen3-tiny"}}), 403, "path_not_allowed");
  expect_status(s.post("/api/inference/load", {{"model", 999}}), 404);
  auto reg = s.post("/api/models", {{"path", s.lib.base}});
  int64_t id = json::parse(reg->body)["id"];
  // The adapter is outside every root until its folder is registered too.
  expect_status(s.post("/api/inference/load", {{"model", id}, {"adapters", {{{"name", "ft"}, {"path", s.lib.adapter}}}}}), 403);
  expect_status(s.post("/api/models", {{"path", s.lib.adapter}}), 201);
  auto r = s.post("/api/inference/load",
                  {{"model", id}, {"name", "tiny"}, {"device", "cpu"}, {"adapters", {{{"name", "ft"}, {"path", s.lib.adapter}}}}});
  expect_status(r, 201);
  json loaded = json::parse(s.get("/api/inference")->body);
  EXPECT_EQ(loaded["ids"], json({"tiny", "tiny:ft"}));

  httplib::Client cli("127.0.0.1", s.port);
  cli.set_read_timeout(60);
  json chat = {{"model", "tiny:ft"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 4}};
  auto c = cli.Post("/v1/chat/completions", {{"Authorization", "Bearer " + s.api_key}}, chat.dump(), "application/json");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, 200) << c->body;
  EXPECT_EQ(json::parse(c->body)["usage"]["completion_tokens"], 4);
  auto anth = cli.Post("/v1/messages", {{"x-api-key", s.api_key}, {"anthropic-version", "2023-06-01"}},
                       json{{"model", "tiny"}, {"max_tokens", 3}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}.dump(),
                       "application/json");
  ASSERT_TRUE(anth);
  EXPECT_EQ(anth->status, 200) << anth->body;
  // An access token is not an API key.
  EXPECT_EQ(cli.Post("/v1/chat/completions", s.auth_headers(), chat.dump(), "application/json")->status, 401);

  expect_status(s.post("/api/inference/unload", {{"name", "tiny"}}), 204);
  expect_status(s.post("/api/inference/unload", {{"name", "tiny"}}), 404);
}

TEST(ServerLibrary, RunConfigPathsAreConfined) {
  Studio s;  // no RunManager: a config that passes the path rules gets 503, one that fails 403
  json cfg = {{"base_model", s.lib.outside + "/model"}, {"dataset", s.lib.data + "/x.jsonl"}};
  expect_status(s.post("/api/runs", {{"config", cfg}}), 403, "path_not_allowed");
  write_file_atomic(s.lib.data + "/x.jsonl", kChatRows);
  cfg["base_model"] = s.lib.models + "/../outside/model";
  expect_status(s.post("/api/runs", {{"config", cfg}}), 403, "path_not_allowed");
  s.store.add_scan_folder(s.lib.models);
  cfg["base_model"] = s.lib.base;
  cfg["dataset"] = s.lib.outside + "/secret.txt";
  expect_status(s.post("/api/runs", {{"config", cfg}}), 403, "path_not_allowed");
  cfg["dataset"] = s.lib.data + "/x.jsonl";
  cfg["output_dir"] = s.lib.models + "/out";  // readable root, not writable
  expect_status(s.post("/api/runs", {{"config", cfg}}), 403, "path_not_allowed");
  cfg["output_dir"] = s.lib.data + "/outputs/mine";
  expect_status(s.post("/api/runs", {{"config", cfg}}), 503);
}

TEST(ServerDatasets, UploadValidatesTypeAndContentAndNeverLeavesPartialFiles) {
  Studio s(4096);
  auto r = s.upload("chat.jsonl", kChatRows);
  expect_status(r, 201);
  json d = json::parse(r->body);
  EXPECT_EQ(d["rows"], 3);
  EXPECT_EQ(d["file_type"], "jsonl");
  EXPECT_EQ(d["format"], "messages");
  EXPECT_EQ(d["bytes"], int64_t(std::strlen(kChatRows)));
  EXPECT_EQ(s.dataset_files(), 1u);

  expect_status(s.upload("chat.txt", kChatRows), 415);
  expect_status(s.upload("chat.jsonl", std::string("\x89PNG\r\n\x1a\n\0\0\0", 11)), 415);
  expect_status(s.upload("rows.csv", R"([{"text": "a json array"}])"), 415);
  expect_status(s.upload("broken.jsonl", std::string(kChatRows) + "{\"messages\": [\n"), 400, "invalid_dataset");
  expect_status(s.upload("big.jsonl", std::string(5000, ' ')), 413);
  expect_status(s.upload("../../escape.jsonl", kChatRows), 201);  // the name is sanitised to a base name
  EXPECT_EQ(s.dataset_files(), 2u) << "a refused upload left a file behind";
  EXPECT_FALSE(file_exists(s.lib.tmp.path + "/escape.jsonl"));

  auto csv = s.upload("alpaca.csv", "instruction,input,output\nSay hi,,hi\n\"Add, please\",1 2,3\n");
  expect_status(csv, 201);
  EXPECT_EQ(json::parse(csv->body)["rows"], 2);
  EXPECT_EQ(json::parse(csv->body)["format"], "alpaca");

  json list = json::parse(s.get("/api/datasets")->body);
  ASSERT_EQ(list["datasets"].size(), 3u);
  int64_t id = d["id"];
  expect_status(s.del("/api/datasets/" + std::to_string(id)), 204);
  expect_status(s.del("/api/datasets/" + std::to_string(id)), 404);
  EXPECT_EQ(s.dataset_files(), 2u);
}

TEST(ServerDatasets, PreviewMarksExactlyTheAssistantTurnsAsTrained) {
  Studio s;
  auto r = s.upload("chat.jsonl", kChatRows);
  int64_t id = json::parse(r->body)["id"];
  std::string base = "/api/datasets/" + std::to_string(id) + "/preview?rows=2&model=";
  expect_status(s.get(base + url_encode(s.lib.base)), 403);
  // Percent-encoded traversal in the query: decoded by the server, then refused by the path rules.
  expect_status(s.get(base + url_encode(s.lib.data) + "%2F%2E%2E%2Foutside%2Fmodel"), 403);
  s.store.add_scan_folder(s.lib.models);
  auto p = s.get(base + url_encode(s.lib.base));
  expect_status(p, 200);
  json j = json::parse(p->body);
  EXPECT_EQ(j["format"], "messages");
  ASSERT_EQ(j["rows"].size(), 2u);
  const char* answers[] = {"Four, of course.", "Vermilion."};
  const char* questions[] = {"What is two plus two?", "Name a colour."};
  for (int i = 0; i < 2; ++i) {
    json row = j["rows"][i];
    std::string text = row["text"], joined;
    for (auto& seg : row["segments"]) joined += seg["text"].get<std::string>();
    EXPECT_EQ(joined, text);
    std::string trained;
    for (auto& sp : row["trained_spans"]) trained += text.substr(sp[0].get<size_t>(), sp[1].get<size_t>() - sp[0].get<size_t>());
    printf("row %d trained text: %s\n", i, json(trained).dump().c_str());
    EXPECT_NE(trained.find(answers[i]), std::string::npos) << trained;
    EXPECT_EQ(trained.find(questions[i]), std::string::npos) << trained;
    EXPECT_NE(text.find(questions[i]), std::string::npos) << text;
    EXPECT_GT(row["trained_tokens"].get<int>(), 0);
    EXPECT_LT(row["trained_tokens"].get<int>(), row["tokens"].get<int>());
  }
}

TEST(ServerExports, GgufExportRunsAsAJobWithEvents) {
  Studio s;
  expect_status(s.post("/api/exports", {{"source", s.lib.base}, {"format", "gguf"}}), 403);
  s.store.add_scan_folder(s.lib.models);
  expect_status(s.post("/api/exports", {{"source", s.lib.base}, {"format", "merged"}}), 400);  // needs an adapter
  expect_status(s.post("/api/exports", {{"source", s.lib.base}, {"format", "gguf"}, {"quant", "q3"}}), 400);
  expect_status(s.post("/api/exports", {{"source", 42}, {"format", "gguf"}}), 404);
  auto r = s.post("/api/exports", {{"source", s.lib.adapter}, {"format", "gguf"}, {"quant", "q8_0"}});
  expect_status(r, 202);
  json job = json::parse(r->body);
  int64_t id = job["id"];
  // The SSE stream ends once the job has finished.
  httplib::Client cli("127.0.0.1", s.port);
  cli.set_read_timeout(120);
  auto ev = cli.Get(("/api/exports/" + std::to_string(id) + "/events").c_str(), s.auth_headers());
  ASSERT_TRUE(ev);
  EXPECT_NE(ev->body.find("\"status\":\"running\""), std::string::npos) << ev->body;
  EXPECT_NE(ev->body.find("\"status\":\"completed\""), std::string::npos) << ev->body;
  json done = json::parse(s.get("/api/exports/" + std::to_string(id))->body);
  EXPECT_EQ(done["status"], "completed");
  std::string out = done["path"];
  EXPECT_TRUE(PathPolicy::is_inside(PathPolicy::canonical(s.lib.data) + "/exports", out)) << out;
  io::GGUFFile f = io::GGUFFile::open(out);
  EXPECT_EQ(f.get_string("general.architecture"), "qwen3");
  EXPECT_EQ(json::parse(s.get("/api/exports")->body)["exports"].size(), 1u);

  // A completed run's adapter (its base from the run's config), as merged and as a LoRA GGUF.
  int64_t run_id = s.store.create_run("r", json{{"base_model", s.lib.base}}.dump(), s.lib.adapter, 1);
  server::Run run = *s.store.run_by_id(run_id);
  run.status = "completed";
  s.store.update_run(run);
  std::map<std::string, std::string> outputs;
  for (const char* format : {"merged", "lora-gguf"}) {
    auto q = s.post("/api/exports", {{"source", run_id}, {"format", format}, {"dtype", "f32"}});
    expect_status(q, 202);
    int64_t qid = json::parse(q->body)["id"];
    json st;
    for (int i = 0; i < 600; ++i) {
      st = json::parse(s.get("/api/exports/" + std::to_string(qid))->body);
      if (st["status"] == "completed" || st["status"] == "failed") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(st["status"], "completed") << st.dump();
    EXPECT_EQ(st["run_id"], run_id);
    outputs[format] = st["path"];
  }
  EXPECT_TRUE(file_exists(outputs["merged"] + "/config.json"));
  EXPECT_EQ(io::GGUFFile::open(outputs["lora-gguf"]).get_string("general.type"), "adapter");
  // Exports are listed among what the studio made.
  json models = json::parse(s.get("/api/models")->body);
  std::set<std::string> made;
  for (auto& m : models["studio"]) made.insert(m["path"]);
  EXPECT_TRUE(made.count(outputs["merged"])) << models.dump(1);
  EXPECT_TRUE(made.count(outputs["lora-gguf"])) << models.dump(1);
}

TEST(ServerRunFiles, DeleteWithFilesRemovesOnlyOutputsInsideTheOutputsFolder) {
  Library lib;
  Store store(lib.data + "/brisk.db");
  RunManager runs(store, "/bin/false", lib.data);
  auto finished_run = [&](const std::string& output_dir) {
    int64_t id = store.create_run("r", "{}", output_dir, 1);
    server::Run run = *store.run_by_id(id);
    run.status = "completed";
    store.update_run(run);
    make_dirs(output_dir);
    write_file_atomic(output_dir + "/adapter_model.safetensors", "x");
    make_dirs(lib.data + "/runs/" + std::to_string(id));
    return id;
  };
  int64_t inside = finished_run(lib.data + "/outputs/a");
  int64_t legacy = finished_run(lib.outside + "/legacy-output");  // a config from before the rule
  make_dirs(lib.data + "/outputs/b");
  ASSERT_EQ(::symlink(lib.outside.c_str(), (lib.data + "/outputs/a/link-out").c_str()), 0);
  EXPECT_TRUE(runs.remove(inside, true));
  EXPECT_FALSE(dir_exists(lib.data + "/outputs/a"));
  EXPECT_FALSE(dir_exists(lib.data + "/runs/" + std::to_string(inside)));
  EXPECT_TRUE(dir_exists(lib.data + "/outputs/b"));
  EXPECT_TRUE(file_exists(lib.outside + "/secret.txt")) << "a symlink inside the output was followed";
  EXPECT_TRUE(runs.remove(legacy, true));
  EXPECT_TRUE(file_exists(lib.outside + "/legacy-output/adapter_model.safetensors"));
  EXPECT_FALSE(store.run_by_id(legacy).has_value());
}
