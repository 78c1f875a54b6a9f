// Export jobs for the studio: the same code as `brisk export` (src/export), run one at a time on
// a worker thread, with progress events for SSE.
//   POST /api/exports {source: RUN_ID | "/model/or/adapter/path", format: merged|gguf|lora-gguf,
//                      quant?, dtype?, base?}  -> 202 job
//   GET  /api/exports, GET /api/exports/{id}, GET /api/exports/{id}/events (SSE)
// Outputs go to <data-dir>/exports/<created>-<random>/. Jobs left queued or running by a previous server are
// marked failed at start-up.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/path_policy.h"
#include "server/store.h"
#include "server/studio_routes.h"

namespace brisk::server {

struct ExportRequest {
  std::string format;  // merged | gguf | lora-gguf
  std::string base_dir, adapter_dir;  // canonical, checked; adapter_dir "" for a plain gguf export
  std::string quant = "f16", dtype = "bf16";
  int64_t run_id = 0, model_id = 0;
  std::string out_path;  // set by submit(): under <data-dir>/exports
};

class ExportManager {
 public:
  ExportManager(Store& store, const PathPolicy& paths);
  ~ExportManager();  // finishes the running job (exports cannot be interrupted), drops the queue
  ExportManager(const ExportManager&) = delete;
  ExportManager& operator=(const ExportManager&) = delete;

  // Validates (AuthError 400/403/404) and queues; returns the job's id.
  int64_t submit(const ExportRequest& req);
  // Builds an ExportRequest from the API body {source, format, quant?, dtype?, base?}.
  ExportRequest request_from_json(const nlohmann::json& body) const;

  // Events of job `id` after index `after` (1-based seq); waits up to timeout_ms when none.
  std::vector<std::pair<int64_t, std::string>> wait_events(int64_t id, int64_t after, int timeout_ms);
  // {id, format, path, status, created, run_id, model_id, error?}; nullopt for an unknown id.
  std::optional<nlohmann::json> job_json(int64_t id);
  std::vector<nlohmann::json> list_json();  // newest first
  static bool is_finished(const std::string& status) { return status == "completed" || status == "failed"; }

 private:
  void worker();
  void emit(int64_t id, nlohmann::json ev);  // mu_ not held
  void run_job(int64_t id, const ExportRequest& req);
  nlohmann::json to_json(const ExportJob& j);

  Store& store_;
  const PathPolicy& paths_;
  std::mutex mu_;
  std::condition_variable cv_;  // queue and events
  std::deque<std::pair<int64_t, ExportRequest>> queue_;
  std::map<int64_t, std::vector<std::string>> events_;  // per job, in order (seq = index + 1)
  std::map<int64_t, std::string> errors_;
  bool stopping_ = false;
  std::thread thread_;
};

void add_export_routes(StudioRoutes& routes, ExportManager& exports);

}  // namespace brisk::server
