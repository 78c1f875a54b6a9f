#!/usr/bin/env python3
"""Runs on the GPU machine: transformers must load a folder written by `brisk export merged`
(sharded safetensors + index, config, tokenizer) and give the logits of base + PEFT adapter.
  python3 scripts/gpu/check_merged.py --brisk .device/brisk --tok-root DIR
"""
import argparse, os, subprocess, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--brisk", required=True)
ap.add_argument("--tok-root", required=True)
args = ap.parse_args()
import torch, peft
from transformers import AutoModelForCausalLM, AutoTokenizer
tmp = tempfile.mkdtemp()
for arch, tok in [("llama", "llama3"), ("qwen3", "qwen3")]:
    base, ad, out = (os.path.join(tmp, f"{arch}-{n}") for n in ("base", "adapter", "merged"))
    run = lambda *a: subprocess.run([args.brisk, *a], check=True, capture_output=True)
    run("init-model", base, "--arch", arch, "--preset", "tiny", "--seed", "3", "--tokenizer", os.path.join(args.tok_root, tok))
    run("init-adapter", base, ad, "--r", "4", "--alpha", "8", "--random-b", "--seed", "2")
    run("export", "merged", base, "--adapter", ad, "--out", out, "--dtype", "f32", "--shard-size", "8MB")
    shards = sorted(f for f in os.listdir(out) if f.endswith(".safetensors"))
    ids = torch.tensor([[5, 900, 31, 77, 1200, 4, 8, 15]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)(ids).logits
        ref_model = peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), ad)
        ref = ref_model(ids).logits
    AutoTokenizer.from_pretrained(out)
    err = float((merged - ref).abs().max() / ref.abs().max())
    print(f"{arch}: transformers loaded {len(shards)} shards; merged vs base+PEFT adapter max rel err {err:.3g}")
    assert err < 1e-5, err
