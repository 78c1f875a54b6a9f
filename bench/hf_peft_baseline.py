#!/usr/bin/env python3
# Copied from ../shared/bench/ (the project baseline; only these two comment lines added) so that the GPU machine, which
# receives only this repository, can run it in the same call as brisk (bench/gpu_compare.sh).
"""Baseline for brisk's GPU benchmarks: Hugging Face transformers + PEFT LoRA training throughput
and peak memory on random-initialised Llama-architecture models, bf16, SDPA attention, fused AdamW.
Run it on the GPU machine in the same call as `brisk bench train` and report the ratio.

  python3 hf_peft_baseline.py --shape llama-3.1-8b --batch 2 --seq 2048 --grad-ckpt 1 [--steps 8]
Prints one JSON line: {"shape", "batch", "seq", "grad_ckpt", "rank", "tok_per_s", "peak_GiB", ...}
"""
import argparse, json, time, torch
from transformers import LlamaConfig, AutoModelForCausalLM
from peft import LoraConfig, get_peft_model

SHAPES = {
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
    "llama-3.2-3b": dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
                         num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
    "llama-3.1-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False),
}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="llama-3.1-8b", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--grad-ckpt", type=int, default=1)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    cfg = LlamaConfig(**SHAPES[a.shape], max_position_embeddings=max(8192, a.seq), rope_theta=500000.0, rms_norm_eps=1e-5)
    torch.manual_seed(0)
    with torch.device("cuda"):
        try:
            m = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", dtype=torch.bfloat16)
        except TypeError:
            m = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", torch_dtype=torch.bfloat16)
    if a.grad_ckpt:
        m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        m.enable_input_require_grads()
    m = get_peft_model(m, LoraConfig(r=a.rank, lora_alpha=a.rank, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    m.train()
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=2e-4, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq), device="cuda")
    torch.cuda.reset_peak_memory_stats()

    def step():
        out = m(input_ids=ids, labels=ids)
        out.loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return out.loss.detach()

    for _ in range(a.warmup): step()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(a.steps): loss = step()
    torch.cuda.synchronize(); dt = time.perf_counter() - t
    print(json.dumps({"system": "hf+peft", "shape": a.shape, "batch": a.batch, "seq": a.seq, "grad_ckpt": a.grad_ckpt,
                      "rank": a.rank, "tok_per_s": round(a.batch * a.seq * a.steps / dt),
                      "peak_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2), "loss": float(loss),
                      "gpu": torch.cuda.get_device_name(0)}))

if __name__ == "__main__":
    main()
