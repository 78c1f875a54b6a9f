#!/usr/bin/env python3
# Copied from ../shared/bench/ (the project baseline; only these two comment lines added) so that the GPU machine, which
# receives only this repository, can run it in the same call as brisk (bench/gpu_compare.sh).
"""Decode baseline: HF transformers greedy decode, batch 1, bf16, random-init Llama shapes, with a static KV cache and
torch.compile (CUDA graphs) -- the fastest plain-PyTorch path -- and eager for reference. Prints JSON lines with tok/s
and the fraction of the memory-bandwidth limit (weight bytes per token over --bw TB/s)."""
import argparse, json, time, torch
from transformers import LlamaConfig, AutoModelForCausalLM
SHAPES = {"llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
          "llama-3.1-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False)}
ap = argparse.ArgumentParser(); ap.add_argument("--shape", default="llama-3.1-8b"); ap.add_argument("--new", type=int, default=256)
ap.add_argument("--bw", type=float, default=3.0); ap.add_argument("--modes", default="eager,static,compiled"); a = ap.parse_args()
cfg = LlamaConfig(**SHAPES[a.shape], max_position_embeddings=4096, rope_theta=500000.0)
with torch.device("cuda"):
    m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()
wbytes = sum(p.numel() * p.element_size() for p in m.parameters())
ids = torch.randint(0, cfg.vocab_size, (1, 16), device="cuda")
for mode in a.modes.split(","):
    kw = dict(max_new_tokens=a.new, min_new_tokens=a.new, do_sample=False)
    if mode != "eager": kw["cache_implementation"] = "static"
    if mode == "compiled": m.forward = torch.compile(m.forward, mode="reduce-overhead", fullgraph=True)
    with torch.no_grad():
        for _ in range(2): m.generate(ids, **kw)
        torch.cuda.synchronize(); t = time.perf_counter(); m.generate(ids, **kw); torch.cuda.synchronize(); dt = time.perf_counter() - t
    tps = a.new / dt
    print(json.dumps({"shape": a.shape, "mode": mode, "tok_per_s": round(tps, 1), "weight_GB": round(wbytes / 1e9, 2),
                      "frac_of_bw_limit": round(tps * wbytes / (a.bw * 1e12), 3)}), flush=True)
