// End-to-end: `brisk studio` on a free port with a temporary data dir, driven by node's fetch.
// Bootstrap admin (printed once, 0600 file), forced password change, tokens (forged, alg none,
// refresh rotation and reuse), API keys, rate limiting, graceful SIGTERM, restart on the same
// data dir, and no secret in the server's output.
// Usage: node studio_auth.mjs /path/to/brisk     (exit 0 = pass)
import { mkdtempSync, readFileSync, statSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { startStudio as start, stopStudio, client } from './studio_util.mjs';

const brisk = process.argv[2];
assert.ok(brisk, 'usage: node studio_auth.mjs BRISK_BINARY');
const dataDir = mkdtempSync(join(tmpdir(), 'brisk-studio-e2e-'));

function expectError(r, status, type, code) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(r.json?.error?.type, type, JSON.stringify(r.json));
  assert.ok(r.json.error.message.length > 0);
  if (code) assert.equal(r.json.error.code, code, JSON.stringify(r.json));
}

const secrets = [];  // everything that must never appear in the server's output
const startStudio = () => start(brisk, dataDir);
let srv = await startStudio();
let call = client(srv.base);
try {
  // --- bootstrap admin
  const m = srv.output.match(/created user "admin" with password: (\S+)/);
  assert.ok(m, 'no admin password printed:\n' + srv.output);
  const initial = m[1];
  const pwFile = join(dataDir, 'initial-admin-password');
  assert.equal(statSync(pwFile).mode & 0o777, 0o600);
  assert.equal(readFileSync(pwFile, 'utf8').trim(), initial);
  assert.equal(statSync(join(dataDir, 'jwt-secret')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dataDir, 'brisk.db')).mode & 0o777, 0o600);

  assert.equal((await call('GET', '/api/health')).status, 200);

  // --- without credentials: every non-public route (the unit test enumerates the route table)
  for (const [method, path] of [['GET', '/api/me'], ['GET', '/api/keys'], ['POST', '/api/keys'], ['DELETE', '/api/keys/1'],
    ['GET', '/api/system'], ['POST', '/api/auth/password'], ['POST', '/api/auth/logout'], ['POST', '/api/auth/refresh']])
    expectError(await call(method, path, { body: method === 'POST' ? {} : undefined }), 401, 'authentication_error');

  // --- forced password change
  let t = (await call('POST', '/api/auth/login', { body: { username: 'admin', password: initial } })).json;
  secrets.push(t.access_token, t.refresh_token);
  assert.equal(t.must_change_password, true);
  expectError(await call('GET', '/api/me', { token: t.access_token }), 403, 'permission_error', 'password_change_required');
  expectError(await call('POST', '/api/auth/password', { token: t.access_token, body: { old: initial, new: 'too-short' } }),
    400, 'invalid_request_error', 'weak_password');
  const newPassword = 'e2e-' + Math.random().toString(36).slice(2) + '-passphrase';
  secrets.push(newPassword);
  const changed = await call('POST', '/api/auth/password', { token: t.access_token, body: { old: initial, new: newPassword } });
  assert.equal(changed.status, 200, JSON.stringify(changed.json));
  assert.ok(!existsSync(pwFile), 'the bootstrap password file outlived the password');
  expectError(await call('GET', '/api/me', { token: t.access_token }), 401, 'authentication_error');  // old session dead
  t = changed.json;
  secrets.push(t.access_token, t.refresh_token);
  const me = await call('GET', '/api/me', { token: t.access_token });
  assert.equal(me.status, 200);
  assert.equal(me.json.name, 'admin');
  const sys = await call('GET', '/api/system', { token: t.access_token });
  assert.equal(sys.status, 200);
  assert.ok(sys.json.cpu.threads > 0 && sys.json.ram.total_bytes > 0 && Array.isArray(sys.json.gpus));

  // --- forged and alg-none tokens
  const [h, p, s] = t.access_token.split('.');
  const flipped = s[0] === 'A' ? 'B' + s.slice(1) : 'A' + s.slice(1);
  expectError(await call('GET', '/api/me', { token: `${h}.${p}.${flipped}` }), 401, 'authentication_error');
  const none = Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url');
  expectError(await call('GET', '/api/me', { token: `${none}.${p}.` }), 401, 'authentication_error');
  const payload = JSON.parse(Buffer.from(p, 'base64url'));
  payload.exp += 86400;  // tampered expiry, original signature
  expectError(await call('GET', '/api/me', { token: `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}` }),
    401, 'authentication_error');

  // --- refresh rotation and reuse detection
  const r1 = await call('POST', '/api/auth/refresh', { body: { refresh_token: t.refresh_token } });
  assert.equal(r1.status, 200);
  secrets.push(r1.json.access_token, r1.json.refresh_token);
  expectError(await call('POST', '/api/auth/refresh', { body: { refresh_token: t.refresh_token } }), 401,
    'authentication_error', 'refresh_token_reused');
  expectError(await call('POST', '/api/auth/refresh', { body: { refresh_token: r1.json.refresh_token } }), 401,
    'authentication_error');  // the family is revoked

  // --- API keys
  const at = r1.json.access_token;  // access tokens stay valid until they expire
  const created = await call('POST', '/api/keys', { token: at, body: { name: 'e2e', expires_in_days: 1 } });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const key = created.json.key;
  secrets.push(key);
  assert.match(key, /^brisk_[A-Za-z0-9_-]{32}$/);
  const listed = await call('GET', '/api/keys', { token: at });
  assert.equal(listed.json.keys.length, 1);
  assert.equal(listed.json.keys[0].prefix, key.slice(0, 12));
  assert.ok(!JSON.stringify(listed.json).includes(key));
  assert.equal((await call('DELETE', `/api/keys/${created.json.id}`, { token: at })).status, 204);
  assert.equal((await call('GET', '/api/keys', { token: at })).json.keys[0].revoked, true);

  // --- rate limit
  for (let i = 0; i < 5; i++)
    expectError(await call('POST', '/api/auth/login', { body: { username: 'admin', password: `wrong-${i}` } }), 401,
      'authentication_error', 'invalid_credentials');
  const limited = await call('POST', '/api/auth/login', { body: { username: 'admin', password: newPassword } });
  expectError(limited, 429, 'rate_limit_error');
  const retry = Number(limited.headers.get('retry-after'));
  assert.ok(retry > 0 && retry <= 300, `Retry-After ${retry}`);

  await stopStudio(srv);
  assert.ok(!existsSync(join(dataDir, 'brisk.db-wal')), 'database not closed cleanly (WAL left behind)');

  // --- restart on the same data dir: no second admin, state kept
  const first = srv.output;
  srv = await startStudio();
  call = client(srv.base);
  assert.doesNotMatch(srv.output, /created user/);
  const again = await call('GET', '/api/keys', { token: at });
  assert.equal(again.status, 200, 'access token from before the restart (same jwt-secret)');
  assert.equal(again.json.keys.length, 1);
  await stopStudio(srv);

  // --- secrets never in the output; the bootstrap password exactly once
  const all = first + srv.output;
  for (const secret of secrets) assert.ok(!all.includes(secret), `a secret leaked into the server output: ${secret.slice(0, 8)}...`);
  assert.equal(all.split(initial).length - 1, 1, 'the bootstrap password must be printed exactly once');
  console.log('studio auth e2e: ok');
} catch (e) {
  console.error(e);
  console.error('--- server output ---\n' + srv.output);
  if (srv.exit === null) srv.child.kill('SIGKILL');
  process.exitCode = 1;
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
