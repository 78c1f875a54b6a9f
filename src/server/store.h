// The studio's persistent state: one SQLite database (<data-dir>/brisk.db) in WAL mode with
// versioned schema migrations. Every SQL statement of the server lives in store.cpp; the rest of
// the server sees only the typed structs and accessors below.
//
// Thread safety: one connection, guarded by a mutex; every accessor is atomic with respect to
// the others (multi-statement operations run in one transaction).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace brisk::server {

// Times are Unix seconds; 0 means "never"/"not set" where a column is optional.
struct User {
  int64_t id = 0;
  std::string name;
  std::string password_hash;  // argon2id string (libsodium crypto_pwhash_str format)
  bool must_change_password = false;
  int64_t created = 0;
  int64_t token_version = 0;  // bumped on password change: invalidates older access tokens
};

struct RefreshToken {
  int64_t id = 0;
  int64_t user_id = 0;
  std::string family;      // one login's chain of rotated tokens shares a family
  std::string token_hash;  // SHA-256 (hex) of the opaque token; the token itself is never stored
  int64_t expires = 0;
  bool used = false;
  bool revoked = false;
};

struct ApiKey {
  int64_t id = 0;
  int64_t user_id = 0;
  std::string name;
  std::string prefix;    // first characters of the key, for display ("brisk_AbC123")
  std::string key_hash;  // SHA-256 (hex) of the full key
  int64_t created = 0;
  int64_t expires = 0;    // 0 = never
  int64_t last_used = 0;  // 0 = never
  bool revoked = false;
};

struct Run {
  int64_t id = 0;
  std::string name;
  std::string status;  // queued | running | completed | stopped | failed
  std::string config_json;
  std::string output_dir;
  int64_t pid = 0;
  int64_t created = 0, started = 0, finished = 0;
  std::string error;
  std::string last_checkpoint;
};

struct RunEvent {
  int64_t run_id = 0;
  int64_t seq = 0;  // 1, 2, ... per run: the SSE `id:`
  std::string json;
};

struct Metric {
  int64_t run_id = 0;
  int64_t step = 0;
  std::string json;
};

struct ModelEntry {
  int64_t id = 0;
  std::string path;
  std::string kind;  // base | adapter | gguf | export
  std::string meta_json;
};

struct Dataset {
  int64_t id = 0;
  std::string name, path, format;
  int64_t bytes = 0, rows = 0, created = 0;
};

struct ExportJob {
  int64_t id = 0;
  int64_t run_id = 0;    // 0 when exporting a registered model
  int64_t model_id = 0;  // 0 when exporting a run's adapter
  std::string format, path, status;
  int64_t created = 0;
};

class Store {
 public:
  // Schema version this build knows; opening a newer database is refused (clear error).
  static int latest_schema_version();

  // Opens (creating if needed) the database and applies pending migrations, each in one
  // transaction. Throws brisk::Error naming the path on any failure.
  explicit Store(const std::string& db_path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schema_version();
  std::string journal_mode();  // "wal" once opened

  // --- users
  int64_t create_user(const std::string& name, const std::string& password_hash, bool must_change_password);
  std::optional<User> user_by_name(const std::string& name);
  std::optional<User> user_by_id(int64_t id);
  int64_t count_users();
  // Sets the hash, clears/sets the flag, bumps token_version and revokes every refresh token of
  // the user, in one transaction.
  void set_password(int64_t user_id, const std::string& password_hash, bool must_change_password);

  // --- refresh tokens
  int64_t insert_refresh_token(int64_t user_id, const std::string& family, const std::string& token_hash,
                               int64_t expires);
  std::optional<RefreshToken> refresh_token_by_hash(const std::string& token_hash);
  // Marks the token used only if it was unused and unrevoked; false if someone got there first.
  bool mark_refresh_token_used(int64_t id);
  void revoke_refresh_family(const std::string& family);

  // --- API keys
  int64_t insert_api_key(int64_t user_id, const std::string& name, const std::string& prefix,
                         const std::string& key_hash, int64_t created, int64_t expires);
  std::optional<ApiKey> api_key_by_hash(const std::string& key_hash);
  std::vector<ApiKey> api_keys_of_user(int64_t user_id);
  bool revoke_api_key(int64_t user_id, int64_t key_id);  // false if no such key of that user
  void touch_api_key(int64_t key_id, int64_t now);

  // --- runs, metrics, events
  int64_t create_run(const std::string& name, const std::string& config_json, const std::string& output_dir,
                     int64_t created);
  std::optional<Run> run_by_id(int64_t id);
  std::vector<Run> list_runs();
  // Every column but the name, by id (the supervisor and the API may both hold a copy; only
  // rename_run changes the name, so a rename is never lost to a stale copy).
  void update_run(const Run& run);
  bool rename_run(int64_t id, const std::string& name);
  bool delete_run(int64_t id);      // with its metrics and events (cascade)
  void put_metric(int64_t run_id, int64_t step, const std::string& json);  // replaces the step's row
  std::vector<Metric> metrics_of_run(int64_t run_id);
  int64_t append_run_event(int64_t run_id, const std::string& json);  // returns the new seq
  std::vector<RunEvent> run_events_after(int64_t run_id, int64_t after_seq, int limit);

  // --- models, scan folders, datasets, exports
  int64_t upsert_model(const std::string& path, const std::string& kind, const std::string& meta_json);
  std::vector<ModelEntry> list_models();
  bool delete_model(int64_t id);
  void add_scan_folder(const std::string& path);
  std::vector<std::string> list_scan_folders();
  bool remove_scan_folder(const std::string& path);
  int64_t insert_dataset(const Dataset& d);
  std::vector<Dataset> list_datasets();
  std::optional<Dataset> dataset_by_id(int64_t id);
  bool delete_dataset(int64_t id);
  int64_t insert_export(const ExportJob& e);
  std::vector<ExportJob> list_exports();
  void set_export_status(int64_t id, const std::string& status);

 private:
  void migrate();
  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
};

}  // namespace brisk::server
