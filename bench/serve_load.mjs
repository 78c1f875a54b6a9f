// Load test for `brisk serve` (or any OpenAI-compatible server): N concurrent streaming chat
// requests through the official openai client; prints throughput and latency percentiles.
//
//   node bench/serve_load.mjs --url http://127.0.0.1:8080 --model tiny [--concurrency 32]
//        [--requests 64] [--max-tokens 64] [--api-key KEY]
//
// Each of `concurrency` workers sends requests back to back until `requests` have been sent.
// Time to first token (TTFT) is measured to the first non-empty content delta; total is until
// the stream ends. Throughput = generated tokens (from usage) / wall time of the whole run.
// Exit status 1 if any request failed.
import OpenAI from "openai";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const url = opt("url", "http://127.0.0.1:8080");
const model = opt("model", null);
const concurrency = Number(opt("concurrency", 32));
const requests = Number(opt("requests", concurrency * 2));
const maxTokens = Number(opt("max-tokens", 64));
const client = new OpenAI({baseURL: `${url}/v1`, apiKey: opt("api-key", process.env.BRISK_API_KEY ?? "none"), maxRetries: 0});

const modelId = model ?? (await client.models.list()).data[0].id;
const prompts = ["Tell me a story about a brisk fox.", "Explain LoRA in one paragraph.", "Write a haiku about GPUs.",
                 "List three prime numbers and why they are prime."];

async function one(i) {
  const t0 = performance.now();
  let ttft = null, tokens = 0;
  const stream = await client.chat.completions.create({
    model: modelId, stream: true, stream_options: {include_usage: true}, max_tokens: maxTokens, temperature: 0.8, seed: i,
    messages: [{role: "user", content: prompts[i % prompts.length]}]});
  for await (const c of stream) {
    if (ttft === null && c.choices[0]?.delta?.content) ttft = performance.now() - t0;
    if (c.usage) tokens = c.usage.completion_tokens;
  }
  const total = performance.now() - t0;
  return {ttft: ttft ?? total, total, tokens};
}

const results = [], errors = [];
let next = 0;
const t0 = performance.now();
await Promise.all(Array.from({length: concurrency}, async () => {
  while (next < requests) {
    const i = next++;
    try {
      results.push(await one(i));
    } catch (e) {
      errors.push(String(e));
    }
  }
}));
const wall = (performance.now() - t0) / 1000;

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
};
const fmt = (ms) => `${ms.toFixed(0)} ms`;
const tokens = results.reduce((a, r) => a + r.tokens, 0);
console.log(`model ${modelId} at ${url}: ${results.length}/${requests} requests ok, ${errors.length} failed, ` +
            `concurrency ${concurrency}, max_tokens ${maxTokens}`);
console.log(`throughput: ${(tokens / wall).toFixed(1)} generated tokens/s (${tokens} tokens in ${wall.toFixed(2)} s), ` +
            `${(results.length / wall).toFixed(2)} requests/s`);
for (const [name, key] of [["time to first token", "ttft"], ["total latency", "total"]]) {
  const xs = results.map((r) => r[key]);
  console.log(`${name}: p50 ${fmt(pct(xs, 50))}, p95 ${fmt(pct(xs, 95))}, p99 ${fmt(pct(xs, 99))}`);
}
if (errors.length) console.log(`first error: ${errors[0]}`);
process.exit(errors.length ? 1 : 0);
