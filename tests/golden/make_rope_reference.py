#!/usr/bin/env python3
"""Dumps the RoPE inverse-frequency tables transformers builds (on the CPU) for a set of
configs, as fp32 bit patterns, to tests/golden/data/rope_tables.json. test_rope_golden.cpp
compares brisk's make_rope_table with them. Run on a machine with torch + transformers:
    python3 tests/golden/make_rope_reference.py
"""
import json
import os
import struct

import torch
import transformers
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

CASES = [
    # name, head_dim, rope_theta, max_position_embeddings, rope_scaling (None = default)
    ("default_llama2", 128, 10000.0, 4096, None),
    ("default_qwen3", 128, 1000000.0, 40960, None),
    ("default_d64", 64, 10000.0, 2048, None),
    ("default_d80", 80, 10000.0, 2048, None),
    ("linear_f4", 128, 10000.0, 16384, {"rope_type": "linear", "factor": 4.0}),
    ("linear_f3", 64, 10000.0, 6144, {"rope_type": "linear", "factor": 3.0}),
    ("dynamic_f2", 128, 10000.0, 4096, {"rope_type": "dynamic", "factor": 2.0}),
    ("llama3_8b", 128, 500000.0, 131072, {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    ("llama3_3b", 64, 500000.0, 131072, {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    # factor == max_pos / original: transformers versions that override factor agree with those that do not.
    ("yarn_qwen3", 128, 1000000.0, 131072, {"rope_type": "yarn", "factor": 4.0,
                                            "original_max_position_embeddings": 32768}),
    ("yarn_no_original", 64, 10000.0, 4096, {"rope_type": "yarn", "factor": 16.0}),
    ("yarn_attention_factor", 128, 10000.0, 4096, {"rope_type": "yarn", "factor": 2.0, "attention_factor": 1.5,
                                                   "beta_fast": 16.0, "beta_slow": 2.0,
                                                   "original_max_position_embeddings": 2048}),
]


def bits(t):
    return [struct.unpack("<I", struct.pack("<f", float(v)))[0] for v in t.to(torch.float32).tolist()]


def main():
    out = {"transformers": transformers.__version__, "torch": torch.__version__, "cases": []}
    for name, head_dim, theta, max_pos, scaling in CASES:
        kwargs = dict(hidden_size=head_dim * 4, num_attention_heads=4, num_key_value_heads=4, head_dim=head_dim,
                      rope_theta=theta, max_position_embeddings=max_pos, rope_scaling=scaling)
        cfg = LlamaConfig(**kwargs)
        emb = LlamaRotaryEmbedding(config=cfg, device=torch.device("cpu"))
        out["cases"].append({
            "name": name, "head_dim": head_dim, "rope_theta": theta, "max_position_embeddings": max_pos,
            "rope_scaling": scaling or {}, "inv_freq_bits": bits(emb.inv_freq),
            "attention_scaling": float(emb.attention_scaling),
        })
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "rope_tables.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path} ({len(CASES)} cases, transformers {transformers.__version__})")


if __name__ == "__main__":
    main()
