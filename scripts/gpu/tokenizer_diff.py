#!/usr/bin/env python3
"""Runs on the GPU machine: tokenizes the 10 MB benchmark corpus (or any file) with transformers
and with brisk for each real tokenizer, and prints the first differences with context.
  python3 scripts/gpu/tokenizer_diff.py --brisk .device/brisk --tok-root DIR --file F
"""
import argparse, json, os, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("--brisk", required=True)
ap.add_argument("--tok-root", required=True)
ap.add_argument("--file", required=True)
ap.add_argument("--names", default="llama3,qwen3,gemma3,llama2")
args = ap.parse_args()
from transformers import AutoTokenizer
text = open(args.file, encoding="utf-8").read()
for name in args.names.split(","):
    d = os.path.join(args.tok_root, name)
    tok = AutoTokenizer.from_pretrained(d)
    # Line by line keeps the diff local; the whole text is checked too.
    want = tok.encode(text, add_special_tokens=False)
    got = json.loads(subprocess.run([args.brisk, "tokenize", d, "--no-special"], input=text.encode(),
                                    capture_output=True, check=True).stdout)
    if want == got:
        print(f"{name}: identical ({len(want)} tokens)")
        continue
    i = next((k for k in range(min(len(want), len(got))) if want[k] != got[k]), min(len(want), len(got)))
    print(f"{name}: DIFFER hf {len(want)} vs brisk {len(got)} tokens; first at {i}")
    print("  hf   :", [tok.convert_ids_to_tokens(t) for t in want[max(0, i - 5):i + 8]])
    print("  brisk:", [tok.convert_ids_to_tokens(t) for t in got[max(0, i - 5):i + 8]])
    print("  text :", repr(tok.decode(want[max(0, i - 8):i + 8])))
    sys.stdout.flush()
