// RunManager without a real trainer: start-up recovery, queue order, child exit codes.
// (The full flow with `brisk train` is tests/e2e/studio_runs.mjs.)
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/test_util.h"
#include "core/fs.h"
#include "server/run_manager.h"

using namespace brisk;
using namespace brisk::server;
using brisk::testing::TempDir;

namespace {

// A fake `brisk` that ignores its arguments, prints one step event on fd 3 and exits with `code`.
std::string fake_brisk(const std::string& dir, int code) {
  std::string path = dir + "/fake-brisk-" + std::to_string(code);
  write_file_atomic(path, "#!/bin/sh\necho '{\"event\":\"step\",\"step\":1,\"loss\":2.5}' >&3\nexit " +
                              std::to_string(code) + "\n");
  ::chmod(path.c_str(), 0755);
  return path;
}

server::Run wait_finished(Store& s, int64_t id) {
  for (int i = 0; i < 500; ++i) {
    auto r = s.run_by_id(id);
    if (r && RunManager::is_finished(r->status)) return *r;
    usleep(10000);
  }
  ADD_FAILURE() << "run " << id << " did not finish";
  return *s.run_by_id(id);
}

}  // namespace

TEST(ServerRuns, RecoveryMarksVanishedRunsFailedAndRequeuesQueuedOnes) {
  TempDir dir;
  Store store(dir.path + "/brisk.db");
  // A run the previous server left "running", with a checkpoint on disk and a pid that is gone.
  int64_t crashed = store.create_run("crashed", "{}", dir.path + "/out", 1);
  make_dirs(dir.path + "/out/checkpoints/checkpoint-3");
  write_file_atomic(dir.path + "/out/checkpoints/checkpoint-3/trainer_state.json", "{}");
  server::Run r = *store.run_by_id(crashed);
  r.status = "running";
  r.pid = 999999999;  // above pid_max: never a live process
  store.update_run(r);
  store.put_metric(crashed, 1, R"({"loss":3})");
  int64_t queued = store.create_run("queued", "{}", dir.path + "/out2", 2);
  make_dirs(dir.path + "/runs/" + std::to_string(queued));
  write_file_atomic(dir.path + "/runs/" + std::to_string(queued) + "/config.json", "{}");

  RunManager mgr(store, fake_brisk(dir.path, 0), dir.path);
  mgr.recover();
  server::Run c = *store.run_by_id(crashed);
  EXPECT_EQ(c.status, "failed");
  EXPECT_EQ(c.pid, 0);
  EXPECT_NE(c.error.find("server stopped"), std::string::npos) << c.error;
  EXPECT_EQ(store.metrics_of_run(crashed).size(), 1u);  // metrics survive
  server::Run q = wait_finished(store, queued);  // requeued and run by the fake trainer
  EXPECT_EQ(q.status, "completed") << q.error;
  ASSERT_EQ(store.metrics_of_run(queued).size(), 1u);
  EXPECT_EQ(store.metrics_of_run(queued)[0].json, R"({"event":"step","loss":2.5,"step":1})");
  auto ev = store.run_events_after(queued, 0, 100);
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(ev.front().json, R"({"event":"status","status":"running"})");
  EXPECT_EQ(ev.back().json, R"({"event":"status","status":"completed"})");
}

TEST(ServerRuns, ExitCodesBecomeStatuses) {
  TempDir dir;
  Store store(dir.path + "/brisk.db");
  for (auto [code, status] : {std::pair{130, "stopped"}, std::pair{3, "failed"}}) {
    RunManager mgr(store, fake_brisk(dir.path, code), dir.path);
    int64_t id = store.create_run("r", "{}", dir.path + "/o", 1);
    make_dirs(dir.path + "/runs/" + std::to_string(id));
    mgr.recover();  // picks up the queued run
    server::Run r = wait_finished(store, id);
    EXPECT_EQ(r.status, status);
    if (code == 3) EXPECT_NE(r.error.find("exited with code 3"), std::string::npos) << r.error;
  }
}

TEST(ServerRuns, BadConfigIsRefusedBeforeAnythingIsRecorded) {
  TempDir dir;
  Store store(dir.path + "/brisk.db");
  RunManager mgr(store, fake_brisk(dir.path, 0), dir.path);
  EXPECT_THROW(mgr.submit("x", nlohmann::json{{"learning_rat", 1}}), Error);
  EXPECT_THROW(mgr.submit("x", nlohmann::json::array()), Error);
  EXPECT_TRUE(store.list_runs().empty());
}
