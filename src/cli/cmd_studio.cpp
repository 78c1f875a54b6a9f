// `brisk studio`: the studio server (/api, the web UI's static files, and the /v1 inference API)
// over the SQLite store in --data-dir. See docs/STUDIO.md.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <httplib.h>
#include <thread>

#include "cli/commands.h"
#include "core/fs.h"
#include "core/log.h"
#include "server/auth.h"
#include "server/inference_service.h"
#include "server/openai_routes.h"
#include "server/path_policy.h"
#include "server/run_manager.h"
#include "server/store.h"
#include "server/studio_datasets.h"
#include "server/studio_exports.h"
#include "server/studio_library.h"
#include "server/studio_routes.h"

namespace {

int g_stop_pipe[2] = {-1, -1};
void on_stop_signal(int sig) {  // async-signal-safe: one write()
  const unsigned char b = static_cast<unsigned char>(sig);
  (void)!::write(g_stop_pipe[1], &b, 1);
}

struct StudioArgs {
  std::string host = "127.0.0.1";
  int port = 8888;
  std::string data_dir;  // "" = ~/.brisk
  std::string web_dir;   // "" = <folder of the brisk binary>/web/dist when present
  int64_t max_upload_mb = 1024;
};

std::string default_data_dir() {
  const char* home = std::getenv("HOME");
  BRISK_CHECK(home && *home, "HOME is not set; pass --data-dir");
  return brisk::path_join(home, ".brisk");
}

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  BRISK_CHECK(n > 0, "cannot find the brisk executable (/proc/self/exe): ", std::strerror(errno));
  return std::string(buf, size_t(n));
}

std::string default_web_dir() {
  std::string exe = self_exe();
  std::string dir = brisk::path_join(exe.substr(0, exe.rfind('/')), "web/dist");
  return brisk::dir_exists(dir) ? dir : "";
}

int run_studio(const StudioArgs& a) {
  using namespace brisk;
  std::string data_dir = a.data_dir.empty() ? default_data_dir() : a.data_dir;
  if (!dir_exists(data_dir)) {
    make_dirs(data_dir);
    ::chmod(data_dir.c_str(), 0700);  // holds the JWT secret and the database
  }
  std::string web_dir = a.web_dir.empty() ? default_web_dir() : a.web_dir;
  BRISK_CHECK(web_dir.empty() || dir_exists(web_dir), "--web-dir ", web_dir, ": no such directory");

  // SIGINT/SIGTERM write one byte to a pipe (async-signal-safe); a watcher thread reads it and
  // stops the server. Works whichever thread the kernel picks for the signal.
  BRISK_CHECK(::pipe2(g_stop_pipe, O_CLOEXEC) == 0, "pipe: ", std::strerror(errno));
  struct sigaction sa = {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a streaming client that hangs up is an error return, not death

  server::Store store(path_join(data_dir, "brisk.db"));
  server::AuthService auth(store, data_dir);
  if (auto pass = auth.bootstrap_admin()) {
    // The only time the passphrase is printed; stdout, never the log.
    std::printf("created user \"admin\" with password: %s\n(also in %s, mode 0600; the first login must change it)\n",
                pass->c_str(), auth.admin_password_path().c_str());
    std::fflush(stdout);
  }

  // Training runs are child processes of this same binary (`brisk train ... --events-fd 3`).
  server::RunManager runs(store, self_exe(), data_dir);
  runs.recover();

  httplib::Server srv;
  // Streaming clients (SSE: run events, chat) each hold a worker for the whole stream.
  const size_t workers = std::max(16u, 4 * std::thread::hardware_concurrency());
  srv.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  // What /v1 serves: models loaded through POST /api/inference/load. Outlives the server.
  server::InferenceService inference;
  server::PathPolicy paths(store, data_dir);
  server::StudioRoutes routes(store, auth, &runs);
  routes.set_path_policy(&paths);
  server::add_library_routes(routes, store, paths, &inference);
  BRISK_CHECK(a.max_upload_mb >= 1, "--max-upload-mb must be >= 1");
  const int64_t max_upload = a.max_upload_mb << 20;
  server::add_dataset_routes(routes, store, paths, max_upload);
  routes.allow_large_uploads("/api/datasets", size_t(max_upload));
  server::ExportManager exports(store, paths);
  server::add_export_routes(routes, exports);
  routes.mount(srv);
  server::mount_openai_routes(srv, inference, [&routes](const httplib::Request& r) { return routes.authorize_api_key(r); });

  if (!web_dir.empty()) {
    BRISK_CHECK(srv.set_mount_point("/", web_dir), "cannot serve ", web_dir);
    log_info("studio: web files from ", web_dir);
  }

  int port = a.port;
  if (port == 0) {
    port = srv.bind_to_any_port(a.host);
  } else if (!srv.bind_to_port(a.host, port)) {
    port = -1;
  }
  BRISK_CHECK(port > 0, "cannot listen on ", a.host, ":", a.port, " (address in use, or not an address of this host)");
  std::printf("studio listening on http://%s:%d\n", a.host.c_str(), port);
  std::fflush(stdout);

  std::thread signal_waiter([&] {
    unsigned char sig = 0;
    while (::read(g_stop_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    if (sig == 0) return;  // woken by main: the server ended by itself
    log_info("studio: ", sig == SIGTERM ? "SIGTERM" : "SIGINT", ", shutting down");
    // A signal in the instant before listen starts: stop() is a no-op until it runs.
    for (int i = 0; i < 500 && !srv.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    inference.cancel_all();  // streaming replies end now instead of holding the pool
    srv.stop();
  });
  bool listened = srv.listen_after_bind();  // returns once stopped; in-flight requests finish first
  const unsigned char wake = 0;
  (void)!::write(g_stop_pipe[1], &wake, 1);
  signal_waiter.join();
  runs.shutdown();  // SIGTERM to a running trainer, which saves a checkpoint; waits for it
  // `store` closes the database as it goes out of scope.
  std::printf("studio stopped\n");
  return listened ? 0 : 1;
}

brisk::cli::Registrar reg("studio", "Run the studio server: web UI, /api and the /v1 inference API",
                          [](CLI::App& app) {
                            auto a = std::make_shared<StudioArgs>();
                            app.add_option("--host", a->host, "Address to listen on")->capture_default_str();
                            app.add_option("--port", a->port, "Port (0 = any free port, printed at start)")
                                ->capture_default_str()
                                ->check(CLI::Range(0, 65535));
                            app.add_option("--data-dir", a->data_dir, "Database, secrets and runs (default ~/.brisk)");
                            app.add_option("--max-upload-mb", a->max_upload_mb, "Largest dataset upload in MiB")
                                ->capture_default_str();
                            app.add_option("--web-dir", a->web_dir, "Static web files (default <build>/web/dist)");
                            return [a]() -> int { return run_studio(*a); };
                          });

}  // namespace
