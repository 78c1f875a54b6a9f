// Studio authentication (libsodium):
//   - passwords: argon2id via crypto_pwhash_str, INTERACTIVE limits (64 MiB, 2 passes): the
//     login endpoint is online and concurrent, so MODERATE's 256 MiB per attempt would let a few
//     parallel logins exhaust memory; rate limiting bounds guessing instead.
//   - access tokens: HS256 JWT, 1 hour, bound to the user's token_version (a password change
//     invalidates every older token). Secret: 32 random bytes in <data-dir>/jwt-secret (0600).
//   - refresh tokens: 32 random bytes (base64url), stored as SHA-256, single use with rotation
//     inside a family; presenting a spent token revokes the whole family (token theft signal).
//   - API keys: "brisk_" + 32 base64url chars (192 bits), stored as SHA-256 with a display prefix.
//   - login rate limiting per client IP and per user name.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "server/store.h"

namespace brisk::server {

// An authentication/authorization failure with its HTTP status (401, 403, 404, 429, 400).
// `code` is a stable machine-readable string; `retry_after` (seconds) is set for 429.
class AuthError : public Error {
 public:
  AuthError(int status, std::string code, const std::string& message, int retry_after = 0)
      : Error(message), status(status), code(std::move(code)), retry_after(retry_after) {}
  int status;
  std::string code;
  int retry_after;
};

// --- primitives ------------------------------------------------------------------------------
void crypto_init();  // sodium_init once per process (thread-safe); every function below calls it
std::string base64url_encode(std::string_view bytes);                  // no padding
std::optional<std::string> base64url_decode(std::string_view text);    // nullopt if not base64url
std::string random_bytes(size_t n);
std::string sha256_hex(std::string_view data);
std::string hash_password(std::string_view password);                  // argon2id string
bool verify_password(const std::string& hash, std::string_view password);
// 20 random base32 characters in groups of 5 ("k3m9q-..."), 100 bits.
std::string random_passphrase();

constexpr int64_t kAccessTokenSeconds = 3600;
constexpr int64_t kRefreshTokenSeconds = 30 * 24 * 3600;
constexpr size_t kMinPasswordLength = 12;
constexpr size_t kMaxPasswordLength = 1024;  // bounds argon2's input, not its cost
constexpr const char* kApiKeyPrefix = "brisk_";

struct AccessClaims {
  int64_t user_id = 0;
  int64_t token_version = 0;
  int64_t issued = 0;
  int64_t expires = 0;
};

// HS256 JSON Web Tokens with a fixed header; only alg HS256 is accepted on verify.
class JwtSigner {
 public:
  explicit JwtSigner(const std::array<unsigned char, 32>& secret) : secret_(secret) {}
  std::string sign(const AccessClaims& claims) const;
  // Checks the shape, alg, signature (constant time) and expiry; nullopt on any failure.
  std::optional<AccessClaims> verify(std::string_view token, int64_t now) const;

 private:
  std::array<unsigned char, 32> secret_;
};

// Reads <path> (32 bytes) or creates it with fresh random bytes, mode 0600.
std::array<unsigned char, 32> load_or_create_secret(const std::string& path);

// Sliding-window failure counter: at most `max_failures` within `window` seconds per key.
class RateLimiter {
 public:
  RateLimiter(int max_failures = 5, int64_t window = 300) : max_(max_failures), window_(window) {}
  int retry_after(const std::string& key, int64_t now);  // 0 = allowed, else seconds to wait
  void record_failure(const std::string& key, int64_t now);
  void clear(const std::string& key);

 private:
  void prune(std::vector<int64_t>& times, int64_t now) const;
  int max_;
  int64_t window_;
  std::mutex mu_;
  std::map<std::string, std::vector<int64_t>> failures_;
};

struct TokenPair {
  std::string access_token;
  std::string refresh_token;
  int64_t expires_in = kAccessTokenSeconds;
  bool must_change_password = false;
};

struct CreatedApiKey {
  ApiKey info;
  std::string key;  // the full key: returned once, never stored
};

// The auth model over a Store. Time comes from `clock` so tests can move it.
class AuthService {
 public:
  AuthService(Store& store, const std::string& data_dir);

  // Creates user "admin" with a random passphrase when there are no users. Returns the
  // passphrase (to print once) and writes it to <data-dir>/initial-admin-password (0600).
  std::optional<std::string> bootstrap_admin();
  std::string admin_password_path() const;

  TokenPair login(const std::string& username, const std::string& password, const std::string& client_ip);
  TokenPair refresh(const std::string& refresh_token);
  void logout(int64_t user_id, const std::string& refresh_token);  // revokes the token's family
  // Checks the old password, sets the new one, revokes older sessions, returns fresh tokens.
  TokenPair change_password(int64_t user_id, const std::string& old_password, const std::string& new_password);

  // The user an access token belongs to (throws AuthError 401 when invalid, expired or stale).
  User authenticate_access(std::string_view token);

  CreatedApiKey create_api_key(int64_t user_id, const std::string& name, int64_t expires);
  // The key's record if it is valid (exists, not revoked, not expired); updates last_used.
  std::optional<ApiKey> verify_api_key(std::string_view key);
  std::vector<ApiKey> list_api_keys(int64_t user_id) { return store_.api_keys_of_user(user_id); }
  bool revoke_api_key(int64_t user_id, int64_t key_id) { return store_.revoke_api_key(user_id, key_id); }

  std::function<int64_t()> clock;
  const JwtSigner& signer() const { return signer_; }

 private:
  TokenPair issue_tokens(const User& user, const std::string& family);
  Store& store_;
  std::string data_dir_;
  JwtSigner signer_;
  RateLimiter limiter_;
  std::string dummy_hash_;  // verified against for unknown users, so timing does not reveal them
};

}  // namespace brisk::server
