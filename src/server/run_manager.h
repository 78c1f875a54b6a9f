// Training runs for the studio: each run is a child process `brisk train CONFIG --events-fd 3`
// (a crash in training never takes the server down). The child's JSON-line events are stored
// (run_events, for SSE replay; step events also as metrics) and wake SSE listeners. One job runs
// at a time (one GPU); the others wait in the queue. On start-up, runs whose process is gone
// are marked failed (resumable when a checkpoint exists).
#pragma once
#include <sys/types.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/store.h"

namespace brisk::server {

class RunManager {
 public:
  // `brisk_binary`: the executable to run `train` with; runs live under <data_dir>/runs/<id>.
  RunManager(Store& store, std::string brisk_binary, std::string data_dir);
  ~RunManager() { shutdown(); }
  // Sends SIGTERM to a running child and waits for it (it saves a checkpoint); queued runs stay
  // queued for the next start. Idempotent.
  void shutdown();
  RunManager(const RunManager&) = delete;
  RunManager& operator=(const RunManager&) = delete;

  // Marks runs left `running`/`queued` by a previous server whose process is gone as failed,
  // then starts the queue. Call once at start-up.
  void recover();

  // Validates `config` (the YAML keys of docs/TRAINING.md, as JSON), records the run as queued
  // and starts it when the GPU is free. Throws brisk::Error on a bad config (a 400).
  Run submit(const std::string& name, const nlohmann::json& config);
  // Queued: removed from the queue (stopped). Running: SIGTERM (the trainer checkpoints and
  // exits 130). False when the run is neither.
  bool stop(int64_t run_id);
  // Queues a stopped or failed run again with `--resume` (continues from its last checkpoint).
  bool resume(int64_t run_id);

  // Deletes a finished run's record (metrics and events too) and, with `files`, its folder
  // <data_dir>/runs/<id> (a config's own output_dir elsewhere is left alone). False when the
  // run is queued or running.
  bool remove(int64_t run_id, bool files);

  // Events after `after_seq`; waits up to timeout_ms for new ones when there are none.
  std::vector<RunEvent> wait_events(int64_t run_id, int64_t after_seq, int timeout_ms);
  static bool is_finished(const std::string& status);

 private:
  void start_next_locked();  // mu_ held: start the oldest queued run if nothing runs
  void supervise(int64_t run_id, pid_t pid, int events_fd);
  void handle_event(Run& run, const std::string& line);

  Store& store_;
  std::string brisk_, data_dir_;
  std::mutex mu_;
  std::condition_variable events_cv_;
  std::vector<int64_t> queue_;          // FIFO of queued run ids
  std::map<int64_t, bool> resume_;      // queued runs that continue from a checkpoint
  int64_t active_run_ = 0;
  pid_t active_pid_ = 0;
  bool stop_requested_ = false;  // we sent the active child SIGTERM
  std::vector<std::thread> supervisors_;
  bool shutting_down_ = false;
};

}  // namespace brisk::server
