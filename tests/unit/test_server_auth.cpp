// Studio auth: password hashing, JWT access tokens, refresh rotation, API keys, rate limiting,
// the bootstrap admin.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/fs.h"
#include "server/auth.h"

using namespace brisk;
using namespace brisk::server;
using brisk::testing::TempDir;

namespace {

std::array<unsigned char, 32> random_secret() {
  std::array<unsigned char, 32> k;
  std::string b = random_bytes(32);
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

struct Env {
  TempDir dir;
  Store store{dir.path + "/brisk.db"};
  AuthService auth{store, dir.path};
  int64_t now = 1'800'000'000;
  Env() {
    auth.clock = [this] { return now; };
  }
  // A user with a known password and no pending change.
  std::pair<int64_t, std::string> user(const std::string& name) {
    std::string pw = random_passphrase();
    return {store.create_user(name, hash_password(pw), false), pw};
  }
};

int expect_auth_error(const std::function<void()>& fn, int status, const std::string& code) {
  try {
    fn();
  } catch (const AuthError& e) {
    EXPECT_EQ(e.status, status) << e.what();
    EXPECT_EQ(e.code, code) << e.what();
    return e.retry_after;
  }
  ADD_FAILURE() << "expected AuthError " << status << " " << code;
  return -1;
}

}  // namespace

TEST(ServerAuth, PasswordHashVerifiesOnlyTheRightPassword) {
  std::string pw = random_passphrase();
  std::string h = hash_password(pw);
  EXPECT_EQ(h.rfind("$argon2id$", 0), 0u) << h;
  EXPECT_EQ(h.find(pw), std::string::npos);
  EXPECT_TRUE(verify_password(h, pw));
  std::string wrong = pw;
  wrong[3] = wrong[3] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(verify_password(h, wrong));
  EXPECT_FALSE(verify_password(h, ""));
  EXPECT_FALSE(verify_password("not a hash", pw));
  EXPECT_NE(hash_password(pw), h);  // salted
}

TEST(ServerAuth, Base64UrlRoundTripsAndRejectsGarbage) {
  for (size_t n = 0; n < 40; ++n) {
    std::string b = random_bytes(n);
    std::string e = base64url_encode(b);
    EXPECT_EQ(e.find_first_of("+/="), std::string::npos) << e;
    EXPECT_EQ(base64url_decode(e), b);
  }
  EXPECT_FALSE(base64url_decode("ab+c"));
  EXPECT_FALSE(base64url_decode("ab=="));
  EXPECT_FALSE(base64url_decode("a"));
}

TEST(ServerAuth, JwtAcceptsValidAndRejectsExpiredForgedTamperedAndAlgNone) {
  JwtSigner signer(random_secret());
  AccessClaims c{42, 3, 1000, 1000 + kAccessTokenSeconds};
  std::string t = signer.sign(c);
  auto v = signer.verify(t, 1001);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->user_id, 42);
  EXPECT_EQ(v->token_version, 3);
  EXPECT_EQ(v->expires, c.expires);

  EXPECT_FALSE(signer.verify(t, c.expires));      // expired at exp
  EXPECT_FALSE(signer.verify(t, c.expires + 1));  // and after
  EXPECT_FALSE(JwtSigner(random_secret()).verify(t, 1001)) << "accepted a token signed with another secret";

  size_t d1 = t.find('.'), d2 = t.rfind('.');
  std::string header = t.substr(0, d1), payload = t.substr(d1 + 1, d2 - d1 - 1), sig = t.substr(d2 + 1);
  // Tampered payload (another user), original signature.
  nlohmann::json p = nlohmann::json::parse(*base64url_decode(payload));
  p["sub"] = "1";
  EXPECT_FALSE(signer.verify(header + "." + base64url_encode(p.dump()) + "." + sig, 1001));
  // alg none, with and without a signature.
  std::string none = base64url_encode(R"({"alg":"none","typ":"JWT"})");
  EXPECT_FALSE(signer.verify(none + "." + payload + ".", 1001));
  EXPECT_FALSE(signer.verify(none + "." + payload + "." + sig, 1001));
  // Flipped signature bit, truncated, extra part, empty.
  std::string bad_sig = *base64url_decode(sig);
  bad_sig[0] ^= 1;
  EXPECT_FALSE(signer.verify(header + "." + payload + "." + base64url_encode(bad_sig), 1001));
  EXPECT_FALSE(signer.verify(header + "." + payload, 1001));
  EXPECT_FALSE(signer.verify(t + ".x", 1001));
  EXPECT_FALSE(signer.verify("", 1001));
}

TEST(ServerAuth, BootstrapAdminWritesAPrivateFileAndMustChangePassword) {
  Env env;
  auto pass = env.auth.bootstrap_admin();
  ASSERT_TRUE(pass);
  EXPECT_GE(pass->size(), kMinPasswordLength);
  EXPECT_FALSE(env.auth.bootstrap_admin());  // only on first start
  struct stat st;
  ASSERT_EQ(::stat(env.auth.admin_password_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_file(env.auth.admin_password_path()), *pass + "\n");
  ASSERT_EQ(::stat((env.dir.path + "/jwt-secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);

  TokenPair t = env.auth.login("admin", *pass, "1.2.3.4");
  EXPECT_TRUE(t.must_change_password);
  User admin = env.auth.authenticate_access(t.access_token);
  EXPECT_EQ(admin.name, "admin");

  expect_auth_error([&] { env.auth.change_password(admin.id, *pass + "x", "a-long-enough-password"); }, 403, "wrong_password");
  expect_auth_error([&] { env.auth.change_password(admin.id, *pass, "short"); }, 400, "weak_password");
  TokenPair t2 = env.auth.change_password(admin.id, *pass, "a-long-enough-password");
  EXPECT_FALSE(t2.must_change_password);
  EXPECT_FALSE(file_exists(env.auth.admin_password_path()));  // the bootstrap secret is gone
  // The old session is dead (token version and refresh family); the new one works.
  expect_auth_error([&] { env.auth.authenticate_access(t.access_token); }, 401, "invalid_token");
  expect_auth_error([&] { env.auth.refresh(t.refresh_token); }, 401, "invalid_refresh_token");
  EXPECT_FALSE(env.auth.authenticate_access(t2.access_token).must_change_password);
  expect_auth_error([&] { env.auth.login("admin", *pass, "1.2.3.4"); }, 401, "invalid_credentials");
  EXPECT_NO_THROW(env.auth.login("admin", "a-long-enough-password", "1.2.3.4"));
}

TEST(ServerAuth, AccessTokenExpiresAfterAnHour) {
  Env env;
  auto [uid, pw] = env.user("alice");
  TokenPair t = env.auth.login("alice", pw, "ip");
  EXPECT_EQ(env.auth.authenticate_access(t.access_token).id, uid);
  env.now += kAccessTokenSeconds - 1;
  EXPECT_NO_THROW(env.auth.authenticate_access(t.access_token));
  env.now += 1;
  expect_auth_error([&] { env.auth.authenticate_access(t.access_token); }, 401, "invalid_token");
}

TEST(ServerAuth, RefreshRotatesAndReuseRevokesTheFamily) {
  Env env;
  auto [uid, pw] = env.user("bob");
  TokenPair other = env.auth.login("bob", pw, "ip");  // a second, independent session
  TokenPair t1 = env.auth.login("bob", pw, "ip");
  TokenPair t2 = env.auth.refresh(t1.refresh_token);
  EXPECT_NE(t2.refresh_token, t1.refresh_token);
  EXPECT_EQ(env.auth.authenticate_access(t2.access_token).id, uid);
  TokenPair t3 = env.auth.refresh(t2.refresh_token);
  // t1 comes back (stolen copy): the whole family dies, t3 included.
  expect_auth_error([&] { env.auth.refresh(t1.refresh_token); }, 401, "refresh_token_reused");
  expect_auth_error([&] { env.auth.refresh(t3.refresh_token); }, 401, "invalid_refresh_token");
  // The other login is untouched.
  TokenPair o2 = env.auth.refresh(other.refresh_token);
  // Logout revokes that family too; a stranger's token cannot be logged out by someone else.
  auto [uid2, pw2] = env.user("carol");
  TokenPair c = env.auth.login("carol", pw2, "ip");
  expect_auth_error([&] { env.auth.logout(uid2, o2.refresh_token); }, 400, "invalid_refresh_token");
  env.auth.logout(uid, o2.refresh_token);
  expect_auth_error([&] { env.auth.refresh(o2.refresh_token); }, 401, "invalid_refresh_token");
  expect_auth_error([&] { env.auth.refresh(base64url_encode(random_bytes(32))); }, 401, "invalid_refresh_token");
  EXPECT_NO_THROW(env.auth.refresh(c.refresh_token));
  // Expiry.
  TokenPair e = env.auth.login("carol", pw2, "ip");
  env.now += kRefreshTokenSeconds;
  expect_auth_error([&] { env.auth.refresh(e.refresh_token); }, 401, "invalid_refresh_token");
}

TEST(ServerAuth, ApiKeysVerifyUntilRevokedOrExpired) {
  Env env;
  auto [uid, pw] = env.user("dave");
  CreatedApiKey k = env.auth.create_api_key(uid, "ci", 0);
  EXPECT_EQ(k.key.rfind("brisk_", 0), 0u);
  EXPECT_EQ(k.key.size(), 6u + 32u);
  EXPECT_EQ(k.info.prefix, k.key.substr(0, 12));
  EXPECT_EQ(k.info.key_hash, sha256_hex(k.key));
  EXPECT_EQ(k.info.key_hash.find(k.key.substr(6)), std::string::npos);

  auto v = env.auth.verify_api_key(k.key);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->user_id, uid);
  EXPECT_EQ(env.auth.list_api_keys(uid)[0].last_used, env.now);
  env.now += 30;  // last_used moves in steps of a minute
  env.auth.verify_api_key(k.key);
  EXPECT_EQ(env.auth.list_api_keys(uid)[0].last_used, env.now - 30);
  env.now += 30;
  env.auth.verify_api_key(k.key);
  EXPECT_EQ(env.auth.list_api_keys(uid)[0].last_used, env.now);

  std::string altered = k.key;
  altered.back() = altered.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(env.auth.verify_api_key(altered));
  EXPECT_FALSE(env.auth.verify_api_key(k.key.substr(6)));
  EXPECT_FALSE(env.auth.verify_api_key(""));

  EXPECT_TRUE(env.auth.revoke_api_key(uid, k.info.id));
  EXPECT_FALSE(env.auth.verify_api_key(k.key));

  CreatedApiKey e = env.auth.create_api_key(uid, "short-lived", env.now + 100);
  EXPECT_TRUE(env.auth.verify_api_key(e.key));
  env.now += 100;
  EXPECT_FALSE(env.auth.verify_api_key(e.key));
  expect_auth_error([&] { env.auth.create_api_key(uid, "", 0); }, 400, "invalid_request");
}

TEST(ServerAuth, LoginRateLimitPerUserAndPerIp) {
  Env env;
  auto [uid, pw] = env.user("erin");
  for (int i = 0; i < 5; ++i)
    expect_auth_error([&] { env.auth.login("erin", "wrong" + std::to_string(i), "10.0.0." + std::to_string(i)); },
                      401, "invalid_credentials");
  // Locked for this user even with the right password, from a fresh IP.
  int wait = expect_auth_error([&] { env.auth.login("erin", pw, "10.9.9.9"); }, 429, "rate_limited");
  EXPECT_GT(wait, 0);
  EXPECT_LE(wait, 300);
  env.now += wait;
  EXPECT_NO_THROW(env.auth.login("erin", pw, "10.9.9.9"));

  // Per IP: one address spraying different user names.
  auto [uid2, pw2] = env.user("frank");
  for (int i = 0; i < 5; ++i)
    expect_auth_error([&] { env.auth.login("nobody" + std::to_string(i), "x", "6.6.6.6"); }, 401, "invalid_credentials");
  expect_auth_error([&] { env.auth.login("frank", pw2, "6.6.6.6"); }, 429, "rate_limited");
  EXPECT_NO_THROW(env.auth.login("frank", pw2, "7.7.7.7"));
}

TEST(ServerAuth, RateLimiterWindowSlides) {
  RateLimiter rl(3, 100);
  rl.record_failure("k", 0);
  rl.record_failure("k", 50);
  EXPECT_EQ(rl.retry_after("k", 60), 0);
  rl.record_failure("k", 60);
  EXPECT_EQ(rl.retry_after("k", 60), 40);  // the failure at t=0 ages out at t=100
  EXPECT_EQ(rl.retry_after("k", 100), 0);
  EXPECT_EQ(rl.retry_after("other", 60), 0);
}
