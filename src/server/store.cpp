#include "server/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace brisk::server {
namespace {

// Schema migrations, in order: migration i (1-based) takes the database from version i-1 to i.
// Never edit a released migration; append a new one.
const char* const kMigrations[] = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  must_change_password INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL,
  token_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE refresh_tokens (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  family TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  expires INTEGER NOT NULL,
  used INTEGER NOT NULL DEFAULT 0,
  revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family);
CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  prefix TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  created INTEGER NOT NULL,
  expires INTEGER NOT NULL DEFAULT 0,
  last_used INTEGER NOT NULL DEFAULT 0,
  revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  config_json TEXT NOT NULL,
  output_dir TEXT NOT NULL,
  pid INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL,
  started INTEGER NOT NULL DEFAULT 0,
  finished INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  last_checkpoint TEXT NOT NULL DEFAULT ''
);
CREATE TABLE metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY (run_id, step)
);
CREATE TABLE run_events (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE models (
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  meta_json TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE scan_folders (path TEXT PRIMARY KEY);
CREATE TABLE datasets (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  format TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  rows INTEGER NOT NULL,
  created INTEGER NOT NULL
);
CREATE TABLE exports (
  id INTEGER PRIMARY KEY,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  model_id INTEGER REFERENCES models(id) ON DELETE SET NULL,
  format TEXT NOT NULL,
  path TEXT NOT NULL,
  status TEXT NOT NULL,
  created INTEGER NOT NULL
);
)sql",
};
constexpr int kLatestVersion = int(sizeof(kMigrations) / sizeof(kMigrations[0]));

// A prepared statement that finalizes itself; bind() is 1-based like sqlite3_bind_*.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK)
      throw Error(cat("database: preparing statement: ", sqlite3_errmsg(db)));
  }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, int64_t v) { return check_bind(sqlite3_bind_int64(st_, i, v)); }
  Stmt& bind(int i, const std::string& v) {
    return check_bind(sqlite3_bind_text(st_, i, v.data(), int(v.size()), SQLITE_TRANSIENT));
  }
  // Binds 0 as NULL: for optional foreign keys.
  Stmt& bind_id_or_null(int i, int64_t v) {
    return check_bind(v ? sqlite3_bind_int64(st_, i, v) : sqlite3_bind_null(st_, i));
  }

  // Advances; true while a row is available.
  bool step() {
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw Error(cat("database: ", sqlite3_errmsg(db_)));
  }
  void run() {
    while (step()) {
    }
  }
  int64_t i64(int col) { return sqlite3_column_int64(st_, col); }
  std::string text(int col) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, col));
    return p ? std::string(p, size_t(sqlite3_column_bytes(st_, col))) : std::string();
  }

 private:
  Stmt& check_bind(int rc) {
    if (rc != SQLITE_OK) throw Error(cat("database: binding parameter: ", sqlite3_errmsg(db_)));
    return *this;
  }
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    throw Error(cat("database: ", msg));
  }
}

// BEGIN IMMEDIATE ... COMMIT, rolled back if the scope exits by exception.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec(db_, "COMMIT");
    done_ = true;
  }

 private:
  sqlite3* db_;
  bool done_ = false;
};

int read_schema_version(sqlite3* db) {
  Stmt s(db, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
  return s.step() ? int(s.i64(0)) : 0;
}

User read_user(Stmt& s) {
  return User{s.i64(0), s.text(1), s.text(2), s.i64(3) != 0, s.i64(4), s.i64(5)};
}
constexpr const char* kUserCols = "SELECT id, name, password_hash, must_change_password, created, token_version FROM users";

ApiKey read_key(Stmt& s) {
  return ApiKey{s.i64(0), s.i64(1), s.text(2), s.text(3), s.text(4), s.i64(5), s.i64(6), s.i64(7), s.i64(8) != 0};
}
constexpr const char* kKeyCols =
    "SELECT id, user_id, name, prefix, key_hash, created, expires, last_used, revoked FROM api_keys";

Run read_run(Stmt& s) {
  return Run{s.i64(0), s.text(1), s.text(2), s.text(3), s.text(4), s.i64(5),
             s.i64(6), s.i64(7), s.i64(8), s.text(9), s.text(10)};
}
constexpr const char* kRunCols =
    "SELECT id, name, status, config_json, output_dir, pid, created, started, finished, error, last_checkpoint "
    "FROM runs";

Dataset read_dataset(Stmt& s) {
  return Dataset{s.i64(0), s.text(1), s.text(2), s.text(3), s.i64(4), s.i64(5), s.i64(6)};
}
constexpr const char* kDatasetCols = "SELECT id, name, path, format, bytes, rows, created FROM datasets";

}  // namespace

int Store::latest_schema_version() { return kLatestVersion; }

Store::Store(const std::string& db_path) : path_(db_path) {
  with_context(cat("database ", db_path), [&] {
    // The file holds password and token hashes: create it private (SQLite gives the -wal and
    // -shm files the database's mode).
    int fd = ::open(db_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    BRISK_CHECK(fd >= 0, "cannot open: ", std::strerror(errno));
    ::close(fd);
    if (sqlite3_open_v2(db_path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw Error(cat("cannot open: ", msg));
    }
    try {
      // Writers wait up to 5 s for each other instead of failing with SQLITE_BUSY.
      sqlite3_busy_timeout(db_, 5000);
      exec(db_, "PRAGMA foreign_keys = ON");
      {
        Stmt s(db_, "PRAGMA journal_mode = WAL");
        BRISK_CHECK(s.step() && s.text(0) == "wal", "cannot switch to WAL mode");
      }
      // WAL + NORMAL is durable across application crashes; only a power loss can drop the
      // last transactions, never corrupt the file.
      exec(db_, "PRAGMA synchronous = NORMAL");
      migrate();
    } catch (...) {
      sqlite3_close(db_);
      db_ = nullptr;
      throw;
    }
  });
}

Store::~Store() {
  if (db_) sqlite3_close(db_);
}

void Store::migrate() {
  exec(db_, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  int version = read_schema_version(db_);
  BRISK_CHECK(version <= kLatestVersion, "schema version ", version, " is newer than this brisk knows (",
              kLatestVersion, "); use a newer brisk or another --data-dir");
  for (int v = version + 1; v <= kLatestVersion; ++v) {
    Transaction tx(db_);
    with_context(cat("migration to schema version ", v), [&] { exec(db_, kMigrations[v - 1]); });
    exec(db_, "DELETE FROM schema_version");
    Stmt(db_, "INSERT INTO schema_version (version) VALUES (?)").bind(1, int64_t(v)).run();
    tx.commit();
  }
}

int Store::schema_version() {
  std::lock_guard lk(mu_);
  return read_schema_version(db_);
}

std::string Store::journal_mode() {
  std::lock_guard lk(mu_);
  Stmt s(db_, "PRAGMA journal_mode");
  return s.step() ? s.text(0) : "";
}

// --- users -----------------------------------------------------------------------------------

int64_t Store::create_user(const std::string& name, const std::string& password_hash, bool must_change_password) {
  std::lock_guard lk(mu_);
  Stmt(db_, "INSERT INTO users (name, password_hash, must_change_password, created) VALUES (?, ?, ?, strftime('%s'))")
      .bind(1, name)
      .bind(2, password_hash)
      .bind(3, int64_t(must_change_password))
      .run();
  return sqlite3_last_insert_rowid(db_);
}

std::optional<User> Store::user_by_name(const std::string& name) {
  std::lock_guard lk(mu_);
  Stmt s(db_, cat(kUserCols, " WHERE name = ?").c_str());
  s.bind(1, name);
  if (!s.step()) return std::nullopt;
  return read_user(s);
}

std::optional<User> Store::user_by_id(int64_t id) {
  std::lock_guard lk(mu_);
  Stmt s(db_, cat(kUserCols, " WHERE id = ?").c_str());
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_user(s);
}

int64_t Store::count_users() {
  std::lock_guard lk(mu_);
  Stmt s(db_, "SELECT COUNT(*) FROM users");
  s.step();
  return s.i64(0);
}

void Store::set_password(int64_t user_id, const std::string& password_hash, bool must_change_password) {
  std::lock_guard lk(mu_);
  Transaction tx(db_);
  Stmt(db_,
       "UPDATE users SET password_hash = ?, must_change_password = ?, token_version = token_version + 1 "
       "WHERE id = ?")
      .bind(1, password_hash)
      .bind(2, int64_t(must_change_password))
      .bind(3, user_id)
      .run();
  Stmt(db_, "UPDATE refresh_tokens SET revoked = 1 WHERE user_id = ?").bind(1, user_id).run();
  tx.commit();
}

// --- refresh tokens --------------------------------------------------------------------------

int64_t Store::insert_refresh_token(int64_t user_id, const std::string& family, const std::string& token_hash,
                                    int64_t expires) {
  std::lock_guard lk(mu_);
  Stmt(db_, "INSERT INTO refresh_tokens (user_id, family, token_hash, expires) VALUES (?, ?, ?, ?)")
      .bind(1, user_id)
      .bind(2, family)
      .bind(3, token_hash)
      .bind(4, expires)
      .run();
  return sqlite3_last_insert_rowid(db_);
}

std::optional<RefreshToken> Store::refresh_token_by_hash(const std::string& token_hash) {
  std::lock_guard lk(mu_);
  Stmt s(db_, "SELECT id, user_id, family, token_hash, expires, used, revoked FROM refresh_tokens WHERE token_hash = ?");
  s.bind(1, token_hash);
  if (!s.step()) return std::nullopt;
  return RefreshToken{s.i64(0), s.i64(1), s.text(2), s.text(3), s.i64(4), s.i64(5) != 0, s.i64(6) != 0};
}

bool Store::mark_refresh_token_used(int64_t id) {
  std::lock_guard lk(mu_);
  Stmt(db_, "UPDATE refresh_tokens SET used = 1 WHERE id = ? AND used = 0 AND revoked = 0").bind(1, id).run();
  return sqlite3_changes(db_) == 1;
}

void Store::revoke_refresh_family(const std::string& family) {
  std::lock_guard lk(mu_);
  Stmt(db_, "UPDATE refresh_tokens SET revoked = 1 WHERE family = ?").bind(1, family).run();
}

// --- API keys --------------------------------------------------------------------------------

int64_t Store::insert_api_key(int64_t user_id, const std::string& name, const std::string& prefix,
                              const std::string& key_hash, int64_t created, int64_t expires) {
  std::lock_guard lk(mu_);
  Stmt(db_, "INSERT INTO api_keys (user_id, name, prefix, key_hash, created, expires) VALUES (?, ?, ?, ?, ?, ?)")
      .bind(1, user_id)
      .bind(2, name)
      .bind(3, prefix)
      .bind(4, key_hash)
      .bind(5, created)
      .bind(6, expires)
      .run();
  return sqlite3_last_insert_rowid(db_);
}

std::optional<ApiKey> Store::api_key_by_hash(const std::string& key_hash) {
  std::lock_guard lk(mu_);
  Stmt s(db_, cat(kKeyCols, " WHERE key_hash = ?").c_str());
  s.bind(1, key_hash);
  if (!s.step()) return std::nullopt;
  return read_key(s);
}

std::vector<ApiKey> Store::api_keys_of_user(int64_t user_id) {
  std::lock_guard lk(mu_);
  Stmt s(db_, cat(kKeyCols, " WHERE user_id = ? ORDER BY id").c_str());
  s.bind(1, user_id);
  std::vector<ApiKey> out;
  while (s.step()) out.push_back(read_key(s));
  return out;
}

bool Store::revoke_api_key(int64_t user_id, int64_t key_id) {
  std::lock_guard lk(mu_);
  Stmt(db_, "UPDATE api_keys SET revoked = 1 WHERE id = ? AND user_id = ?").bind(1, key_id).bind(2, user_id).run();
  return sqlite3_changes(db_) == 1;
}

void Store::touch_api_key(int64_t key_id, int64_t now) {
  std::lock_guard lk(mu_);
  Stmt(db_, "UPDATE api_keys SET last_used = ? WHERE id = ?").bind(1, now).bind(2, key_id).run();
}

// --- runs, metrics, events -------------------------------------------------------------------

int64_t Store::create_run(const std::string& name, const std::string& config_json, const std::string& output_dir,
                          int64_t created) {
  std::lock_guard lk(mu_);
  Stmt(db_, "INSERT INTO runs (name, status, config_json, output_dir, created) VALUES (?, 'queued', ?, ?, ?)")
      .bind(1, name)
      .bind(2, config_json)
      .bind(3, output_dir)
      .bind(4, created)
      .run();
  return sqlite3_last_insert_rowid(db_);
}

std::optional<Run> Store::run_by_id(int64_t id) {
  std::lock_guard lk(mu_);
  Stmt s(db_, cat(kRunCols, " WHERE id = ?").c_str());
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_run(s);
}

std::vector<Run> Store::list_runs() {
  std::lock_guard lk(mu_);
  Stmt s(db_, cat(kRunCols, " ORDER BY id DESC").c_str());
  std::vector<Run> out;
  while (s.step()) out.push_back(read_run(s));
  return out;
}

void Store::update_run(const Run& r) {
  std::lock_guard lk(mu_);
  Stmt(db_,
       "UPDATE runs SET status = ?, config_json = ?, output_dir = ?, pid = ?, started = ?, finished = ?, "
       "error = ?, last_checkpoint = ? WHERE id = ?")
      .bind(1, r.status)
      .bind(2, r.config_json)
      .bind(3, r.output_dir)
      .bind(4, r.pid)
      .bind(5, r.started)
      .bind(6, r.finished)
      .bind(7, r.error)
      .bind(8, r.last_checkpoint)
      .bind(9, r.id)
      .run();
}

bool Store::rename_run(int64_t id, const std::string& name) {
  std::lock_guard lk(mu_);
  Stmt(db_, "UPDATE runs SET name = ? WHERE id = ?").bind(1, name).bind(2, id).run();
  return sqlite3_changes(db_) == 1;
}

bool Store::delete_run(int64_t id) {
  std::lock_guard lk(mu_);
  Stmt(db_, "DELETE FROM runs WHERE id = ?").bind(1, id).run();
  return sqlite3_changes(db_) == 1;
}

void Store::put_metric(int64_t run_id, int64_t step, const std::string& json) {
  std::lock_guard lk(mu_);
  Stmt(db_, "INSERT OR REPLACE INTO metrics (run_id, step, json) VALUES (?, ?, ?)")
      .bind(1, run_id)
      .bind(2, step)
      .bind(3, json)
      .run();
}

std::vector<Metric> Store::metrics_of_run(int64_t run_id) {
  std::lock_guard lk(mu_);
  Stmt s(db_, "SELECT run_id, step, json FROM metrics WHERE run_id = ? ORDER BY step");
  s.bind(1, run_id);
  std::vector<Metric> out;
  while (s.step()) out.push_back({s.i64(0), s.i64(1), s.text(2)});
  return out;
}

int64_t Store::append_run_event(int64_t run_id, const std::string& json) {
  std::lock_guard lk(mu_);
  Transaction tx(db_);
  Stmt q(db_, "SELECT COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_id = ?");
  q.bind(1, run_id);
  q.step();
  int64_t seq = q.i64(0);
  Stmt(db_, "INSERT INTO run_events (run_id, seq, json) VALUES (?, ?, ?)").bind(1, run_id).bind(2, seq).bind(3, json).run();
  tx.commit();
  return seq;
}

std::vector<RunEvent> Store::run_events_after(int64_t run_id, int64_t after_seq, int limit) {
  std::lock_guard lk(mu_);
  Stmt s(db_, "SELECT run_id, seq, json FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?");
  s.bind(1, run_id).bind(2, after_seq).bind(3, int64_t(limit));
  std::vector<RunEvent> out;
  while (s.step()) out.push_back({s.i64(0), s.i64(1), s.text(2)});
  return out;
}

// --- models, scan folders, datasets, exports -------------------------------------------------

int64_t Store::upsert_model(const std::string& path, const std::string& kind, const std::string& meta_json) {
  std::lock_guard lk(mu_);
  Stmt(db_,
       "INSERT INTO models (path, kind, meta_json) VALUES (?, ?, ?) "
       "ON CONFLICT(path) DO UPDATE SET kind = excluded.kind, meta_json = excluded.meta_json")
      .bind(1, path)
      .bind(2, kind)
      .bind(3, meta_json)
      .run();
  Stmt s(db_, "SELECT id FROM models WHERE path = ?");
  s.bind(1, path);
  s.step();
  return s.i64(0);
}

std::vector<ModelEntry> Store::list_models() {
  std::lock_guard lk(mu_);
  Stmt s(db_, "SELECT id, path, kind, meta_json FROM models ORDER BY id");
  std::vector<ModelEntry> out;
  while (s.step()) out.push_back({s.i64(0), s.text(1), s.text(2), s.text(3)});
  return out;
}

bool Store::delete_model(int64_t id) {
  std::lock_guard lk(mu_);
  Stmt(db_, "DELETE FROM models WHERE id = ?").bind(1, id).run();
  return sqlite3_changes(db_) == 1;
}

void Store::add_scan_folder(const std::string& path) {
  std::lock_guard lk(mu_);
  Stmt(db_, "INSERT OR IGNORE INTO scan_folders (path) VALUES (?)").bind(1, path).run();
}

std::vector<std::string> Store::list_scan_folders() {
  std::lock_guard lk(mu_);
  Stmt s(db_, "SELECT path FROM scan_folders ORDER BY path");
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

bool Store::remove_scan_folder(const std::string& path) {
  std::lock_guard lk(mu_);
  Stmt(db_, "DELETE FROM scan_folders WHERE path = ?").bind(1, path).run();
  return sqlite3_changes(db_) == 1;
}

int64_t Store::insert_dataset(const Dataset& d) {
  std::lock_guard lk(mu_);
  Stmt(db_, "INSERT INTO datasets (name, path, format, bytes, rows, created) VALUES (?, ?, ?, ?, ?, ?)")
      .bind(1, d.name)
      .bind(2, d.path)
      .bind(3, d.format)
      .bind(4, d.bytes)
      .bind(5, d.rows)
      .bind(6, d.created)
      .run();
  return sqlite3_last_insert_rowid(db_);
}

std::vector<Dataset> Store::list_datasets() {
  std::lock_guard lk(mu_);
  Stmt s(db_, cat(kDatasetCols, " ORDER BY id").c_str());
  std::vector<Dataset> out;
  while (s.step()) out.push_back(read_dataset(s));
  return out;
}

std::optional<Dataset> Store::dataset_by_id(int64_t id) {
  std::lock_guard lk(mu_);
  Stmt s(db_, cat(kDatasetCols, " WHERE id = ?").c_str());
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_dataset(s);
}

bool Store::delete_dataset(int64_t id) {
  std::lock_guard lk(mu_);
  Stmt(db_, "DELETE FROM datasets WHERE id = ?").bind(1, id).run();
  return sqlite3_changes(db_) == 1;
}

int64_t Store::insert_export(const ExportJob& e) {
  std::lock_guard lk(mu_);
  Stmt(db_, "INSERT INTO exports (run_id, model_id, format, path, status, created) VALUES (?, ?, ?, ?, ?, ?)")
      .bind_id_or_null(1, e.run_id)
      .bind_id_or_null(2, e.model_id)
      .bind(3, e.format)
      .bind(4, e.path)
      .bind(5, e.status)
      .bind(6, e.created)
      .run();
  return sqlite3_last_insert_rowid(db_);
}

std::vector<ExportJob> Store::list_exports() {
  std::lock_guard lk(mu_);
  Stmt s(db_, "SELECT id, COALESCE(run_id, 0), COALESCE(model_id, 0), format, path, status, created FROM exports ORDER BY id");
  std::vector<ExportJob> out;
  while (s.step()) out.push_back({s.i64(0), s.i64(1), s.i64(2), s.text(3), s.text(4), s.text(5), s.i64(6)});
  return out;
}

void Store::set_export_status(int64_t id, const std::string& status) {
  std::lock_guard lk(mu_);
  Stmt(db_, "UPDATE exports SET status = ? WHERE id = ?").bind(1, status).bind(2, id).run();
}

}  // namespace brisk::server
