#include "server/auth.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/fs.h"

namespace brisk::server {
namespace {

using json = nlohmann::json;

// Writes `data` to `path` with mode 0600 whatever the umask, replacing any old file.
void write_private_file(const std::string& path, std::string_view data) {
  std::string tmp = cat(path, ".tmp-", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  BRISK_CHECK(fd >= 0, "cannot create ", tmp, ": ", std::strerror(errno));
  bool ok = ::fchmod(fd, 0600) == 0;
  size_t done = 0;
  while (ok && done < data.size()) {
    ssize_t w = ::write(fd, data.data() + done, data.size() - done);
    if (w < 0 && errno == EINTR) continue;
    ok = w > 0;
    if (ok) done += size_t(w);
  }
  ok = ok && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw Error(cat("cannot write ", path, ": ", std::strerror(ok ? errno : err)));
  }
}

int64_t system_now() { return int64_t(std::time(nullptr)); }

}  // namespace

// --- primitives ------------------------------------------------------------------------------

void crypto_init() {
  static const bool ok = sodium_init() >= 0;
  BRISK_CHECK(ok, "libsodium failed to initialise");
}

std::string base64url_encode(std::string_view bytes) {
  crypto_init();
  const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    variant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  crypto_init();
  std::string out(text.size() * 3 / 4 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size())
    return std::nullopt;
  out.resize(len);
  return out;
}

std::string random_bytes(size_t n) {
  crypto_init();
  std::string out(n, '\0');
  randombytes_buf(out.data(), n);
  return out;
}

std::string sha256_hex(std::string_view data) {
  crypto_init();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

std::string hash_password(std::string_view password) {
  crypto_init();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    throw Error("password hashing failed: out of memory");
  return out;
}

bool verify_password(const std::string& hash, std::string_view password) {
  crypto_init();
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string random_passphrase() {
  static const char kAlphabet[] = "abcdefghijkmnpqrstuvwxyz23456789";  // 32 symbols, no l/o/0/1
  std::string out;
  for (int i = 0; i < 20; ++i) {
    if (i && i % 5 == 0) out += '-';
    out += kAlphabet[randombytes_uniform(32)];
  }
  return out;
}

// --- JWT -------------------------------------------------------------------------------------

namespace {
std::string hmac_sha256(const std::array<unsigned char, 32>& key, std::string_view msg) {
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
  crypto_auth_hmacsha256_final(&st, mac);
  return std::string(reinterpret_cast<char*>(mac), sizeof mac);
}
const std::string kJwtHeader = R"({"alg":"HS256","typ":"JWT"})";
}  // namespace

std::string JwtSigner::sign(const AccessClaims& c) const {
  crypto_init();
  json payload = {{"sub", std::to_string(c.user_id)}, {"ver", c.token_version}, {"iat", c.issued},
                  {"exp", c.expires}, {"typ", "access"}};
  std::string signing_input = base64url_encode(kJwtHeader) + "." + base64url_encode(payload.dump());
  return signing_input + "." + base64url_encode(hmac_sha256(secret_, signing_input));
}

std::optional<AccessClaims> JwtSigner::verify(std::string_view token, int64_t now) const {
  crypto_init();
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) return std::nullopt;
  auto header = base64url_decode(token.substr(0, d1));
  auto payload = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = base64url_decode(token.substr(d2 + 1));
  if (!header || !payload || !sig || sig->size() != crypto_auth_hmacsha256_BYTES) return std::nullopt;
  // The algorithm is fixed by the server, never chosen by the token ("alg":"none" and key
  // confusion attacks); the header is still checked so a foreign token is rejected explicitly.
  json h = json::parse(*header, nullptr, false);
  if (!h.is_object() || !h.contains("alg") || h["alg"] != "HS256") return std::nullopt;
  std::string expected = hmac_sha256(secret_, token.substr(0, d2));
  if (crypto_verify_32(reinterpret_cast<const unsigned char*>(expected.data()),
                       reinterpret_cast<const unsigned char*>(sig->data())) != 0)
    return std::nullopt;
  json p = json::parse(*payload, nullptr, false);
  if (!p.is_object()) return std::nullopt;
  auto int_field = [&](const char* k) -> std::optional<int64_t> {
    if (!p.contains(k) || !p[k].is_number_integer()) return std::nullopt;
    return p[k].get<int64_t>();
  };
  auto ver = int_field("ver"), iat = int_field("iat"), exp = int_field("exp");
  if (!ver || !iat || !exp || !p.contains("sub") || !p["sub"].is_string() || p.value("typ", "") != "access")
    return std::nullopt;
  if (*exp <= now) return std::nullopt;
  const std::string& sub = p["sub"].get_ref<const std::string&>();
  if (sub.empty() || sub.size() > 18 || !std::all_of(sub.begin(), sub.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return std::nullopt;
  return AccessClaims{std::stoll(sub), *ver, *iat, *exp};
}

std::array<unsigned char, 32> load_or_create_secret(const std::string& path) {
  std::array<unsigned char, 32> key{};
  if (file_exists(path)) {
    std::string bytes = read_file(path);
    BRISK_CHECK(bytes.size() == key.size(), path, ": expected ", key.size(), " bytes, found ", bytes.size(),
                " (delete it to sign out every session and make a new one)");
    std::memcpy(key.data(), bytes.data(), key.size());
    return key;
  }
  std::string bytes = random_bytes(key.size());
  write_private_file(path, bytes);
  std::memcpy(key.data(), bytes.data(), key.size());
  return key;
}

// --- rate limiting ---------------------------------------------------------------------------

void RateLimiter::prune(std::vector<int64_t>& times, int64_t now) const {
  times.erase(std::remove_if(times.begin(), times.end(), [&](int64_t t) { return t <= now - window_; }),
              times.end());
}

int RateLimiter::retry_after(const std::string& key, int64_t now) {
  std::lock_guard lk(mu_);
  auto it = failures_.find(key);
  if (it == failures_.end()) return 0;
  prune(it->second, now);
  if (int(it->second.size()) < max_) return 0;
  // The window reopens when the oldest failure in it ages out.
  return int(std::max<int64_t>(1, it->second.front() + window_ - now));
}

void RateLimiter::record_failure(const std::string& key, int64_t now) {
  std::lock_guard lk(mu_);
  // Bound memory under a spray of distinct keys: drop keys whose failures all aged out.
  if (failures_.size() > 10000) {
    for (auto it = failures_.begin(); it != failures_.end();) {
      prune(it->second, now);
      it = it->second.empty() ? failures_.erase(it) : std::next(it);
    }
  }
  auto& times = failures_[key];
  prune(times, now);
  times.push_back(now);
}

void RateLimiter::clear(const std::string& key) {
  std::lock_guard lk(mu_);
  failures_.erase(key);
}

// --- AuthService -----------------------------------------------------------------------------

AuthService::AuthService(Store& store, const std::string& data_dir)
    : clock(system_now),
      store_(store),
      data_dir_(data_dir),
      signer_(load_or_create_secret(path_join(data_dir, "jwt-secret"))),
      dummy_hash_(hash_password(random_passphrase())) {}

std::string AuthService::admin_password_path() const { return path_join(data_dir_, "initial-admin-password"); }

std::optional<std::string> AuthService::bootstrap_admin() {
  if (store_.count_users() > 0) return std::nullopt;
  std::string pass = random_passphrase();
  // File first: if it cannot be written, no user exists whose password nobody knows.
  write_private_file(admin_password_path(), pass + "\n");
  store_.create_user("admin", hash_password(pass), /*must_change_password=*/true);
  return pass;
}

TokenPair AuthService::issue_tokens(const User& user, const std::string& family) {
  int64_t now = clock();
  TokenPair t;
  t.access_token = signer_.sign({user.id, user.token_version, now, now + kAccessTokenSeconds});
  t.refresh_token = base64url_encode(random_bytes(32));
  store_.insert_refresh_token(user.id, family, sha256_hex(t.refresh_token), now + kRefreshTokenSeconds);
  t.must_change_password = user.must_change_password;
  return t;
}

TokenPair AuthService::login(const std::string& username, const std::string& password, const std::string& client_ip) {
  int64_t now = clock();
  std::string ip_key = "ip:" + client_ip, user_key = "user:" + username;
  int wait = std::max(limiter_.retry_after(ip_key, now), limiter_.retry_after(user_key, now));
  if (wait > 0)
    throw AuthError(429, "rate_limited", cat("too many failed logins; try again in ", wait, " s"), wait);
  if (password.size() > kMaxPasswordLength) throw AuthError(400, "invalid_request", "password too long");
  auto user = store_.user_by_name(username);
  bool ok = verify_password(user ? user->password_hash : dummy_hash_, password) && user;
  if (!ok) {
    limiter_.record_failure(ip_key, now);
    limiter_.record_failure(user_key, now);
    throw AuthError(401, "invalid_credentials", "invalid username or password");
  }
  limiter_.clear(user_key);
  return issue_tokens(*user, base64url_encode(random_bytes(16)));
}

TokenPair AuthService::refresh(const std::string& refresh_token) {
  auto rt = store_.refresh_token_by_hash(sha256_hex(refresh_token));
  if (!rt || rt->revoked) throw AuthError(401, "invalid_refresh_token", "invalid or revoked refresh token");
  if (rt->used || !store_.mark_refresh_token_used(rt->id)) {
    // A spent token came back: either the client misbehaves or it was stolen. Both copies
    // of the session die.
    store_.revoke_refresh_family(rt->family);
    throw AuthError(401, "refresh_token_reused", "refresh token already used; the session was revoked, log in again");
  }
  if (rt->expires <= clock()) throw AuthError(401, "invalid_refresh_token", "refresh token expired");
  auto user = store_.user_by_id(rt->user_id);
  if (!user) throw AuthError(401, "invalid_refresh_token", "user no longer exists");
  return issue_tokens(*user, rt->family);
}

void AuthService::logout(int64_t user_id, const std::string& refresh_token) {
  auto rt = store_.refresh_token_by_hash(sha256_hex(refresh_token));
  // Another user's token is reported like an unknown one: nothing about it leaks.
  if (!rt || rt->user_id != user_id) throw AuthError(400, "invalid_refresh_token", "unknown refresh token");
  store_.revoke_refresh_family(rt->family);
}

TokenPair AuthService::change_password(int64_t user_id, const std::string& old_password,
                                       const std::string& new_password) {
  auto user = store_.user_by_id(user_id);
  if (!user) throw AuthError(401, "invalid_token", "user no longer exists");
  int64_t now = clock();
  std::string key = cat("password:", user_id);
  if (int wait = limiter_.retry_after(key, now); wait > 0)
    throw AuthError(429, "rate_limited", cat("too many wrong passwords; try again in ", wait, " s"), wait);
  if (old_password.size() > kMaxPasswordLength || !verify_password(user->password_hash, old_password)) {
    limiter_.record_failure(key, now);
    throw AuthError(403, "wrong_password", "the current password is wrong");
  }
  if (new_password.size() < kMinPasswordLength)
    throw AuthError(400, "weak_password", cat("the new password must have at least ", kMinPasswordLength, " characters"));
  if (new_password.size() > kMaxPasswordLength) throw AuthError(400, "invalid_request", "password too long");
  if (new_password == old_password)
    throw AuthError(400, "weak_password", "the new password must differ from the current one");
  store_.set_password(user_id, hash_password(new_password), false);
  // The bootstrap passphrase is dead once the admin has chosen a password.
  if (user->name == "admin") ::unlink(admin_password_path().c_str());
  return issue_tokens(*store_.user_by_id(user_id), base64url_encode(random_bytes(16)));
}

User AuthService::authenticate_access(std::string_view token) {
  auto claims = signer_.verify(token, clock());
  if (!claims) throw AuthError(401, "invalid_token", "invalid or expired access token");
  auto user = store_.user_by_id(claims->user_id);
  if (!user || user->token_version != claims->token_version)
    throw AuthError(401, "invalid_token", "access token no longer valid; log in again");
  return *user;
}

CreatedApiKey AuthService::create_api_key(int64_t user_id, const std::string& name, int64_t expires) {
  if (name.empty() || name.size() > 100) throw AuthError(400, "invalid_request", "key name must have 1 to 100 characters");
  CreatedApiKey k;
  k.key = kApiKeyPrefix + base64url_encode(random_bytes(24));  // 24 bytes -> 32 characters
  int64_t now = clock();
  std::string prefix = k.key.substr(0, std::strlen(kApiKeyPrefix) + 6);
  int64_t id = store_.insert_api_key(user_id, name, prefix, sha256_hex(k.key), now, expires);
  k.info = ApiKey{id, user_id, name, prefix, sha256_hex(k.key), now, expires, 0, false};
  return k;
}

std::optional<ApiKey> AuthService::verify_api_key(std::string_view key) {
  if (key.size() != std::strlen(kApiKeyPrefix) + 32 || key.substr(0, std::strlen(kApiKeyPrefix)) != kApiKeyPrefix)
    return std::nullopt;
  // Lookup by hash: the stored value reveals nothing and comparing digests leaks nothing useful.
  auto k = store_.api_key_by_hash(sha256_hex(key));
  int64_t now = clock();
  if (!k || k->revoked || (k->expires != 0 && k->expires <= now)) return std::nullopt;
  // last_used has minute resolution: a busy client does not turn every request into a write.
  if (now - k->last_used >= 60) {
    store_.touch_api_key(k->id, now);
    k->last_used = now;
  }
  return k;
}

}  // namespace brisk::server
