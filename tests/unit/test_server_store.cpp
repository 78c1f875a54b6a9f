// The studio's SQLite store: migrations, WAL, foreign keys, and the typed accessors.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <random>

#include "common/test_util.h"
#include "server/store.h"

using namespace brisk;
using namespace brisk::server;
using brisk::testing::TempDir;

namespace {

// Runs one statement on a raw connection (to inspect or damage the database behind the Store).
void raw_exec(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(h);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

std::string random_text(std::mt19937& rng, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += char('a' + rng() % 26);
  return s;
}

}  // namespace

TEST(ServerStore, MigratesFromEmptyAndReopensWithData) {
  TempDir dir;
  std::string db = dir.path + "/brisk.db";
  std::mt19937 rng(7);
  std::string name = random_text(rng, 10), hash = random_text(rng, 40);
  int64_t id;
  {
    Store s(db);
    EXPECT_EQ(s.schema_version(), Store::latest_schema_version());
    EXPECT_GE(Store::latest_schema_version(), 1);
    id = s.create_user(name, hash, true);
  }
  Store s(db);  // reopening applies nothing and keeps the rows
  EXPECT_EQ(s.schema_version(), Store::latest_schema_version());
  auto u = s.user_by_name(name);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->id, id);
  EXPECT_EQ(u->password_hash, hash);
  EXPECT_TRUE(u->must_change_password);
  EXPECT_EQ(u->token_version, 0);
  EXPECT_GT(u->created, 1700000000);
  EXPECT_EQ(s.count_users(), 1);
}

TEST(ServerStore, UsesWalAndForeignKeys) {
  TempDir dir;
  Store s(dir.path + "/brisk.db");
  EXPECT_EQ(s.journal_mode(), "wal");
  // A refresh token for a user that does not exist violates the foreign key.
  EXPECT_THROW(s.insert_refresh_token(12345, "fam", "hash", 1), Error);
  int64_t uid = s.create_user("u", "h", false);
  s.insert_refresh_token(uid, "fam", "hash", 1);
  EXPECT_TRUE(file_exists(dir.path + "/brisk.db-wal"));
}

TEST(ServerStore, RefusesANewerSchema) {
  TempDir dir;
  std::string db = dir.path + "/brisk.db";
  { Store s(db); }
  raw_exec(db, "UPDATE schema_version SET version = " + std::to_string(Store::latest_schema_version() + 1));
  try {
    Store s(db);
    FAIL() << "opened a database from the future";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(db), std::string::npos) << e.what();
  }
}

TEST(ServerStore, RefreshTokenIsSpentOnlyOnceAndFamiliesRevoke) {
  TempDir dir;
  Store s(dir.path + "/brisk.db");
  int64_t uid = s.create_user("u", "h", false);
  int64_t a = s.insert_refresh_token(uid, "famA", "ha", 100);
  s.insert_refresh_token(uid, "famA", "ha2", 100);
  int64_t b = s.insert_refresh_token(uid, "famB", "hb", 100);
  EXPECT_TRUE(s.mark_refresh_token_used(a));
  EXPECT_FALSE(s.mark_refresh_token_used(a));  // second use loses
  EXPECT_TRUE(s.refresh_token_by_hash("ha")->used);
  s.revoke_refresh_family("famA");
  EXPECT_TRUE(s.refresh_token_by_hash("ha2")->revoked);
  EXPECT_FALSE(s.refresh_token_by_hash("hb")->revoked);
  s.set_password(uid, "h2", false);  // a password change revokes every session of the user
  EXPECT_TRUE(s.refresh_token_by_hash("hb")->revoked);
  EXPECT_FALSE(s.mark_refresh_token_used(b));
  EXPECT_EQ(s.user_by_id(uid)->token_version, 1);
  EXPECT_FALSE(s.refresh_token_by_hash("nope"));
}

TEST(ServerStore, ApiKeysBelongToTheirUser) {
  TempDir dir;
  Store s(dir.path + "/brisk.db");
  int64_t u1 = s.create_user("u1", "h", false), u2 = s.create_user("u2", "h", false);
  int64_t k = s.insert_api_key(u1, "laptop", "brisk_abcdef", "khash", 1000, 2000);
  EXPECT_FALSE(s.revoke_api_key(u2, k));  // not u2's key
  EXPECT_FALSE(s.api_key_by_hash("khash")->revoked);
  s.touch_api_key(k, 1500);
  auto keys = s.api_keys_of_user(u1);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].name, "laptop");
  EXPECT_EQ(keys[0].prefix, "brisk_abcdef");
  EXPECT_EQ(keys[0].expires, 2000);
  EXPECT_EQ(keys[0].last_used, 1500);
  EXPECT_TRUE(s.revoke_api_key(u1, k));
  EXPECT_TRUE(s.api_key_by_hash("khash")->revoked);
  EXPECT_TRUE(s.api_keys_of_user(u2).empty());
}

TEST(ServerStore, RunsMetricsAndEvents) {
  TempDir dir;
  Store s(dir.path + "/brisk.db");
  int64_t r = s.create_run("first", R"({"lr":1e-4})", "/out/1", 111);
  auto run = s.run_by_id(r);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, "queued");
  run->status = "running";
  run->pid = 4242;
  run->last_checkpoint = "/out/1/checkpoint-10";
  s.update_run(*run);
  EXPECT_EQ(s.run_by_id(r)->pid, 4242);
  EXPECT_EQ(s.run_by_id(r)->last_checkpoint, "/out/1/checkpoint-10");

  s.put_metric(r, 2, R"({"loss":2.5})");
  s.put_metric(r, 1, R"({"loss":3.0})");
  s.put_metric(r, 2, R"({"loss":2.25})");  // a resumed run rewrites a step, never duplicates it
  auto m = s.metrics_of_run(r);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].step, 1);
  EXPECT_EQ(m[1].json, R"({"loss":2.25})");

  for (int i = 1; i <= 5; ++i) EXPECT_EQ(s.append_run_event(r, "{\"i\":" + std::to_string(i) + "}"), i);
  auto ev = s.run_events_after(r, 3, 100);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].seq, 4);
  EXPECT_EQ(ev[1].json, "{\"i\":5}");
  EXPECT_EQ(s.run_events_after(r, 0, 2).size(), 2u);
  EXPECT_EQ(s.list_runs().size(), 1u);

  EXPECT_TRUE(s.rename_run(r, "renamed"));
  s.update_run(*run);  // a stale copy does not undo the rename
  EXPECT_EQ(s.run_by_id(r)->name, "renamed");
  EXPECT_TRUE(s.delete_run(r));
  EXPECT_FALSE(s.run_by_id(r));
  EXPECT_TRUE(s.metrics_of_run(r).empty());  // cascade
  EXPECT_TRUE(s.run_events_after(r, 0, 100).empty());
  EXPECT_FALSE(s.rename_run(r, "gone"));
}

TEST(ServerStore, ModelsDatasetsExportsAndScanFolders) {
  TempDir dir;
  Store s(dir.path + "/brisk.db");
  int64_t m = s.upsert_model("/models/a", "base", "{}");
  EXPECT_EQ(s.upsert_model("/models/a", "gguf", R"({"q":"q8_0"})"), m);  // same path, same row
  ASSERT_EQ(s.list_models().size(), 1u);
  EXPECT_EQ(s.list_models()[0].kind, "gguf");
  s.add_scan_folder("/models");
  s.add_scan_folder("/models");
  EXPECT_EQ(s.list_scan_folders().size(), 1u);
  EXPECT_TRUE(s.remove_scan_folder("/models"));
  int64_t d = s.insert_dataset({0, "alpaca", "/data/a.jsonl", "alpaca", 1234, 10, 99});
  EXPECT_EQ(s.dataset_by_id(d)->bytes, 1234);
  int64_t e = s.insert_export({0, 0, m, "gguf", "/exports/a.gguf", "queued", 5});
  s.set_export_status(e, "done");
  ASSERT_EQ(s.list_exports().size(), 1u);
  EXPECT_EQ(s.list_exports()[0].status, "done");
  EXPECT_EQ(s.list_exports()[0].model_id, m);
  EXPECT_EQ(s.list_exports()[0].run_id, 0);
  EXPECT_TRUE(s.delete_model(m));
  EXPECT_EQ(s.list_exports()[0].model_id, 0);  // ON DELETE SET NULL
  EXPECT_TRUE(s.delete_dataset(d));
  EXPECT_FALSE(s.delete_dataset(d));
}
