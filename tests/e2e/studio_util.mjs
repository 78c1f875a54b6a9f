// Shared by the studio e2e tests: start/stop `brisk studio` and a small JSON client.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';

// Starts the server; resolves once it prints its address. -v: debug logging, so the request log
// is on and the secrets check below covers it.
export function startStudio(brisk, dataDir) {
  const child = spawn(brisk, ['-v', 'studio', '--port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const srv = { child, output: '', exit: null };
  srv.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve((srv.exit = { code, signal }))));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('studio did not start:\n' + srv.output)), 20000);
    const onData = (d) => {
      srv.output += d.toString();
      const m = srv.output.match(/studio listening on (http:\/\/[^\s]+)/);
      if (m && !srv.base) {
        srv.base = m[1];
        clearTimeout(timer);
        resolve(srv);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    srv.exited.then(() => reject(new Error('studio exited early:\n' + srv.output)));
  });
}

export async function stopStudio(srv) {
  srv.child.kill('SIGTERM');
  const { code, signal } = await srv.exited;
  assert.equal(signal, null, 'killed by a signal instead of shutting down: ' + srv.output);
  assert.equal(code, 0, srv.output);
  assert.match(srv.output, /studio stopped/);
}

// call(method, path, {body, token, headers}) -> {status, json, headers}
export const client = (base) => async function call(method, path, { body, token, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* 204 */ }
  return { status: res.status, json, headers: res.headers };
};
