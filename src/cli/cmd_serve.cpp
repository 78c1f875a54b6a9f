// `brisk serve MODEL`: the OpenAI/Anthropic-compatible inference API alone (like llama-server),
// without the studio's accounts and store. Without --api-key the API is open, so it binds to
// 127.0.0.1 unless told otherwise.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <httplib.h>

#include "cli/commands.h"
#include "core/log.h"
#include "server/http_util.h"
#include "server/inference_service.h"
#include "server/openai_routes.h"

namespace {

std::atomic<bool> g_stop_requested{false};
void on_serve_stop_signal(int) { g_stop_requested = true; }  // async-signal-safe: one atomic store

struct ServeArgs {
  std::string model, name, host = "127.0.0.1", api_key, device = "auto";
  std::vector<std::string> adapters;
  int port = 8080, parallel = 8, http_threads = 0;
  int64_t ctx = 0, max_body_mb = 16;
};

int run_serve(const ServeArgs& a) {
  using namespace brisk;
  using namespace brisk::server;
  BRISK_CHECK(a.port >= 0 && a.port <= 65535, "--port must be in [0, 65535], got ", a.port);
  BRISK_CHECK(a.max_body_mb >= 1, "--max-body-mb must be >= 1");
  ModelLoadOptions lo;
  lo.path = a.model;
  lo.name = a.name;
  lo.device = a.device;
  lo.parallel = a.parallel;
  lo.context = a.ctx;
  for (const std::string& spec : a.adapters) {
    // NAME=DIR, or DIR alone (named after its folder).
    size_t eq = spec.find('=');
    std::string name, dir = spec;
    if (eq != std::string::npos) {
      name = spec.substr(0, eq);
      dir = spec.substr(eq + 1);
    } else {
      std::string d = spec;
      while (d.size() > 1 && d.back() == '/') d.pop_back();
      name = d.substr(d.find_last_of('/') == std::string::npos ? 0 : d.find_last_of('/') + 1);
    }
    lo.adapters.emplace_back(name, dir);
  }
  std::string api_key = a.api_key;
  if (api_key.empty())
    if (const char* env = std::getenv("BRISK_API_KEY")) api_key = env;  // keeps the key out of `ps`

  InferenceService service;
  std::string name = service.load(lo);
  for (const ModelInfo& m : service.list()) {
    std::string adapters;
    for (const std::string& ad : m.adapters) adapters += " " + m.name + ":" + ad;
    log_info("loaded ", m.name, " from ", m.path, " on ", m.device, ": ", m.parallel, " slots of ", m.context,
             " tokens", adapters.empty() ? "" : "; adapter ids:", adapters);
  }

  httplib::Server svr;
  // Each streaming client holds a worker for its whole reply: size the pool for the slots plus
  // as many waiting and non-streaming clients again, and a few for /health and /v1/models.
  int threads = a.http_threads > 0 ? a.http_threads : std::max(32, 4 * a.parallel + 8);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  install_common_handlers(svr, size_t(a.max_body_mb) << 20);
  AuthorizeFn authorized;
  if (!api_key.empty())
    authorized = [api_key](const httplib::Request& req) { return constant_time_equals(request_api_key(req), api_key); };
  else
    log_warn("no --api-key: the API is open to anyone who can reach ", a.host, ":", a.port);
  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) { send_json(res, {{"status", "ok"}}); });
  mount_openai_routes(svr, service, authorized);

  int port = a.port;
  if (port == 0) {
    port = svr.bind_to_any_port(a.host);
    BRISK_CHECK(port > 0, "cannot listen on ", a.host, " (any port)");
  } else {
    BRISK_CHECK(svr.bind_to_port(a.host, port), "cannot listen on ", a.host, ":", port,
                " (in use, or not an address of this machine)");
  }

  // Graceful stop: the handler only sets a flag; this thread cancels the generations in flight
  // (their streams end at once) and stops the server, whose pool then drains.
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up mid-write is an error return, not death
  std::signal(SIGINT, on_serve_stop_signal);
  std::signal(SIGTERM, on_serve_stop_signal);
  std::atomic<bool> exiting{false};
  std::thread watcher([&] {
    while (!g_stop_requested && !exiting) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!g_stop_requested) return;
    log_info("shutting down: cancelling requests in flight");
    service.cancel_all();
    // Repeated: a signal that lands just before listen_after_bind() starts would find nothing
    // to stop yet.
    while (!exiting) {
      svr.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });

  std::printf("listening on http://%s:%d (model id: %s)\n", a.host.c_str(), port, name.c_str());
  std::fflush(stdout);
  bool ok = svr.listen_after_bind();
  exiting = true;
  watcher.join();
  if (!g_stop_requested) BRISK_CHECK(ok, "server on ", a.host, ":", port, " stopped unexpectedly");
  log_info("stopped");
  return 0;
}

brisk::cli::Registrar reg("serve", "Serve a model over the OpenAI and Anthropic APIs", [](CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  app.add_option("model", a->model, "HF model folder or .gguf file")->required();
  app.add_option("--name", a->name, "Model id clients use (default: the folder's name)");
  app.add_option("--adapter", a->adapters,
                 "LoRA adapter NAME=DIR (PEFT folder), served as model id MODEL:NAME (repeatable)");
  app.add_option("--host", a->host, "Address to listen on")->default_val("127.0.0.1");
  app.add_option("--port", a->port, "Port (0: any free port)")->default_val(8080);
  app.add_option("--api-key", a->api_key,
                 "Require this key (Authorization: Bearer KEY or x-api-key: KEY); also read from BRISK_API_KEY");
  app.add_option("--device", a->device, "auto, cpu or cuda")->default_val("auto");
  app.add_option("--parallel", a->parallel, "Requests decoded together (KV-cache slots)")->default_val(8);
  app.add_option("--ctx", a->ctx, "Context per slot in tokens (default: the model's, at most 4096)");
  app.add_option("--http-threads", a->http_threads, "HTTP worker threads (default: max(32, 4 x parallel + 8))");
  app.add_option("--max-body-mb", a->max_body_mb, "Largest request body in MiB")->default_val(16);
  return [a]() { return run_serve(*a); };
});

}  // namespace
