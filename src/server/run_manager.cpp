#include "server/run_manager.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "server/path_policy.h"
#include "train/train_config.h"
#include "train/trainer.h"

extern char** environ;

namespace brisk::server {
namespace {

using json = nlohmann::json;

int64_t now_s() { return int64_t(std::time(nullptr)); }

constexpr int kEventsFd = 3;  // the child's --events-fd

// True when `pid` is alive and its command line names `config_path` (a pid alone may have been
// reused by an unrelated process since the previous server died).
bool is_our_child(pid_t pid, const std::string& config_path) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  try {
    return read_file(cat("/proc/", pid, "/cmdline")).find(config_path) != std::string::npos;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

bool RunManager::is_finished(const std::string& s) { return s == "completed" || s == "stopped" || s == "failed"; }

RunManager::RunManager(Store& store, std::string brisk_binary, std::string data_dir)
    : store_(store), brisk_(std::move(brisk_binary)), data_dir_(std::move(data_dir)) {}

void RunManager::shutdown() {
  {
    std::lock_guard lk(mu_);
    shutting_down_ = true;
    if (active_pid_ > 0) {
      stop_requested_ = true;
      ::kill(active_pid_, SIGTERM);  // the trainer checkpoints and exits 130
    }
  }
  for (;;) {
    std::vector<std::thread> threads;
    {
      std::lock_guard lk(mu_);
      threads.swap(supervisors_);
    }
    if (threads.empty()) break;
    for (auto& t : threads) t.join();
  }
}

void RunManager::recover() {
  std::lock_guard lk(mu_);
  std::vector<Run> runs = store_.list_runs();
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.id < b.id; });
  for (Run& run : runs) {
    if (run.status == "queued") {
      queue_.push_back(run.id);
    } else if (run.status == "running") {
      std::string config_path = path_join(data_dir_, cat("runs/", run.id, "/config.json"));
      // An orphan still training writes its events nowhere: ask it to checkpoint and stop.
      if (is_our_child(pid_t(run.pid), config_path)) ::kill(pid_t(run.pid), SIGTERM);
      run.status = "failed";
      run.finished = now_s();
      run.pid = 0;
      run.last_checkpoint = train::latest_checkpoint(run.output_dir);
      run.error = run.last_checkpoint.empty() ? "the server stopped while this run was active"
                                              : "the server stopped while this run was active; resumable from " +
                                                    run.last_checkpoint;
      store_.update_run(run);
      store_.append_run_event(run.id, json{{"event", "status"}, {"status", "failed"}, {"error", run.error}}.dump());
      log_warn("studio: run ", run.id, " was active when the server stopped; marked failed");
    }
  }
  start_next_locked();
}

Run RunManager::submit(const std::string& name, const json& config) {
  BRISK_CHECK(config.is_object(), "\"config\" must be a JSON object of training config keys (docs/TRAINING.md)");
  BRISK_CHECK(name.size() <= 200, "run name longer than 200 characters");
  json cfg_json = config;
  bool own_output = !cfg_json.contains("output_dir");
  // Validate before anything is recorded; the real output_dir is set once the run has an id.
  if (own_output) cfg_json["output_dir"] = path_join(data_dir_, "runs/pending");
  train::TrainConfig cfg = train::parse_train_config(cfg_json.dump(), "run config");
  train::validate(cfg);

  std::lock_guard lk(mu_);
  BRISK_CHECK(!shutting_down_, "the server is shutting down");
  int64_t id = store_.create_run(name.empty() ? "run" : name, "{}", "", now_s());
  std::string dir = path_join(data_dir_, cat("runs/", id));
  if (own_output) cfg_json["output_dir"] = path_join(dir, "output");
  Run run = *store_.run_by_id(id);
  run.config_json = cfg_json.dump();
  run.output_dir = cfg_json["output_dir"].get<std::string>();
  try {
    make_dirs(dir);
    write_file_atomic(path_join(dir, "config.json"), cfg_json.dump(2));
  } catch (const Error& e) {
    // Recorded as failed rather than left queued with no config: the id is already taken.
    run.status = "failed";
    run.error = e.what();
    run.finished = now_s();
    store_.update_run(run);
    throw;
  }
  store_.update_run(run);
  store_.append_run_event(id, json{{"event", "status"}, {"status", "queued"}}.dump());
  queue_.push_back(id);
  start_next_locked();
  return *store_.run_by_id(id);
}

void RunManager::start_next_locked() {
  while (!active_run_ && !queue_.empty() && !shutting_down_) {
    int64_t id = queue_.front();
    queue_.erase(queue_.begin());
    bool resume = resume_[id];
    resume_.erase(id);
    auto run = store_.run_by_id(id);
    if (!run) continue;
    std::string dir = path_join(data_dir_, cat("runs/", id));
    std::string config_path = path_join(dir, "config.json"), log_path = path_join(dir, "train.log");
    std::vector<std::string> args = {brisk_, "train", config_path, "--events-fd", std::to_string(kEventsFd), "--quiet"};
    if (resume) args.push_back("--resume");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    int fds[2];
    pid_t pid = -1;
    int rc = ::pipe2(fds, O_CLOEXEC);
    if (rc == 0) {
      // The child: stdin /dev/null, stdout+stderr appended to train.log, events on fd 3.
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
      posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      posix_spawn_file_actions_adddup2(&fa, 1, 2);
      posix_spawn_file_actions_adddup2(&fa, fds[1], kEventsFd);
      rc = posix_spawn(&pid, brisk_.c_str(), &fa, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&fa);
      ::close(fds[1]);
      if (rc != 0) ::close(fds[0]);
    } else {
      rc = errno;
    }
    if (rc != 0) {
      run->status = "failed";
      run->error = cat("cannot start ", brisk_, ": ", std::strerror(rc));
      run->finished = now_s();
      store_.update_run(*run);
      store_.append_run_event(id, json{{"event", "status"}, {"status", "failed"}, {"error", run->error}}.dump());
      continue;
    }
    run->status = "running";
    run->pid = pid;
    run->started = now_s();
    run->error.clear();
    store_.update_run(*run);
    store_.append_run_event(id, json{{"event", "status"}, {"status", "running"}}.dump());
    active_run_ = id;
    active_pid_ = pid;
    log_info("studio: run ", id, " started (pid ", pid, ")");
    supervisors_.emplace_back(&RunManager::supervise, this, id, pid, fds[0]);
  }
  events_cv_.notify_all();
}

void RunManager::handle_event(Run& run, const std::string& line) {
  json ev = json::parse(line, nullptr, false);
  if (!ev.is_object() || !ev.contains("event") || !ev["event"].is_string()) {
    log_warn("studio: run ", run.id, ": ignoring a malformed event line");
    return;
  }
  store_.append_run_event(run.id, ev.dump());
  const std::string& kind = ev["event"].get_ref<const std::string&>();
  if (kind == "step" && ev.contains("step") && ev["step"].is_number_integer())
    store_.put_metric(run.id, ev["step"].get<int64_t>(), ev.dump());
  if ((kind == "checkpoint" || kind == "stopped") && ev.contains("path") && ev["path"].is_string())
    run.last_checkpoint = ev["path"].get<std::string>();
  if (kind == "stopped" && ev.contains("checkpoint") && ev["checkpoint"].is_string())
    run.last_checkpoint = ev["checkpoint"].get<std::string>();
  if (kind == "error" && ev.contains("message") && ev["message"].is_string()) run.error = ev["message"].get<std::string>();
  if (kind == "checkpoint" || kind == "stopped") {
    auto stored = store_.run_by_id(run.id);
    if (stored) {
      stored->last_checkpoint = run.last_checkpoint;
      store_.update_run(*stored);
    }
  }
}

void RunManager::supervise(int64_t run_id, pid_t pid, int events_fd) {
  Run run = *store_.run_by_id(run_id);
  std::string error;
  if (FILE* f = ::fdopen(events_fd, "r")) {
    char* line = nullptr;
    size_t cap = 0;
    ssize_t n;
    while ((n = ::getline(&line, &cap, f)) > 0) {
      try {
        handle_event(run, std::string(line, size_t(n)));
      } catch (const std::exception& e) {
        log_error("studio: run ", run_id, ": recording an event: ", e.what());
      }
      std::lock_guard lk(mu_);
      events_cv_.notify_all();
    }
    std::free(line);
    std::fclose(f);
  } else {
    ::close(events_fd);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  std::lock_guard lk(mu_);
  auto stored = store_.run_by_id(run_id);
  if (stored) {
    Run& r = *stored;
    r.last_checkpoint = run.last_checkpoint.empty() ? train::latest_checkpoint(r.output_dir) : run.last_checkpoint;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      r.status = "completed";
    } else if ((WIFEXITED(st) && WEXITSTATUS(st) == 130) ||
               (stop_requested_ && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM)) {
      // 130: the trainer saved a checkpoint and stopped. Killed by our SIGTERM: it was still
      // starting up (before its handler), so there was nothing to save.
      r.status = "stopped";
    } else {
      r.status = "failed";
      if (run.error.empty())
        r.error = WIFEXITED(st) ? cat("brisk train exited with code ", WEXITSTATUS(st), "; see ",
                                      path_join(data_dir_, cat("runs/", run_id, "/train.log")))
                                : cat("brisk train was killed by signal ", WTERMSIG(st));
      else
        r.error = run.error;
    }
    r.pid = 0;
    r.finished = now_s();
    store_.update_run(r);
    json ev = {{"event", "status"}, {"status", r.status}};
    if (!r.error.empty()) ev["error"] = r.error;
    store_.append_run_event(run_id, ev.dump());
    log_info("studio: run ", run_id, " ", r.status);
  }
  active_run_ = 0;
  active_pid_ = 0;
  stop_requested_ = false;
  start_next_locked();  // notifies listeners
}

bool RunManager::stop(int64_t run_id) {
  std::lock_guard lk(mu_);
  if (active_run_ == run_id && active_pid_ > 0) {
    stop_requested_ = true;
    ::kill(active_pid_, SIGTERM);
    return true;
  }
  auto it = std::find(queue_.begin(), queue_.end(), run_id);
  if (it == queue_.end()) return false;
  queue_.erase(it);
  resume_.erase(run_id);
  if (auto run = store_.run_by_id(run_id)) {
    run->status = "stopped";
    run->finished = now_s();
    store_.update_run(*run);
    store_.append_run_event(run_id, json{{"event", "status"}, {"status", "stopped"}}.dump());
  }
  events_cv_.notify_all();
  return true;
}

bool RunManager::resume(int64_t run_id) {
  std::lock_guard lk(mu_);
  auto run = store_.run_by_id(run_id);
  if (!run || (run->status != "stopped" && run->status != "failed") || shutting_down_) return false;
  run->status = "queued";
  run->error.clear();
  run->finished = 0;
  store_.update_run(*run);
  store_.append_run_event(run_id, json{{"event", "status"}, {"status", "queued"}, {"resume", true}}.dump());
  resume_[run_id] = !train::latest_checkpoint(run->output_dir).empty();
  queue_.push_back(run_id);
  start_next_locked();
  return true;
}

bool RunManager::remove(int64_t run_id, bool files) {
  std::lock_guard lk(mu_);
  auto run = store_.run_by_id(run_id);
  if (!run || !is_finished(run->status)) return false;
  if (files) {
    std::error_code ec;
    std::filesystem::remove_all(path_join(data_dir_, cat("runs/", run_id)), ec);
    BRISK_CHECK(!ec, "deleting the files of run ", run_id, ": ", ec.message());
    // An output_dir the client named lives strictly inside <data-dir>/outputs (PathPolicy);
    // anything else (a config from before that rule) is left alone. remove_all does not follow
    // symlinks, so nothing outside is touched.
    std::string outputs = PathPolicy::canonical(path_join(data_dir_, "outputs"));
    std::string out = PathPolicy::canonical(run->output_dir);
    if (!outputs.empty() && !out.empty() && out != outputs && PathPolicy::is_inside(outputs, out)) {
      std::filesystem::remove_all(out, ec);
      BRISK_CHECK(!ec, "deleting the output of run ", run_id, ": ", ec.message());
    }
  }
  store_.delete_run(run_id);
  events_cv_.notify_all();
  return true;
}

std::vector<RunEvent> RunManager::wait_events(int64_t run_id, int64_t after_seq, int timeout_ms) {
  std::unique_lock lk(mu_);
  auto events = store_.run_events_after(run_id, after_seq, 256);
  if (events.empty()) {
    events_cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms));
    events = store_.run_events_after(run_id, after_seq, 256);
  }
  return events;
}

}  // namespace brisk::server
