#!/usr/bin/env python3
"""Checks io/hf_config.cpp's assumptions about transformers' config classes (run where
transformers is installed, e.g. the GPU machine):

    python3 tests/unit/test_hf_config_transformers.py

For each supported model_type it builds the config class from the required shape keys only
(as a config.json that omits everything else would be loaded) and compares the defaults that
brisk fills in (io/hf_config.cpp, defaults_for and parse_hf_config) with what transformers
gives. It also loads every seed config in tests/fuzz/corpus/fuzz_hf_config/ with AutoConfig.
Prints one line per mismatch and exits 1 if there is any; nothing to commit.
"""
import glob
import json
import os
import sys

import transformers
from transformers import AutoConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPE = dict(vocab_size=1000, hidden_size=640, intermediate_size=1280, num_hidden_layers=2,
             num_attention_heads=10)

# What brisk assumes when the key is absent (must match io/hf_config.cpp).
EXPECTED = {
    "llama": dict(num_key_value_heads=10, head_dim=64, max_position_embeddings=2048, bos_token_id=1,
                  eos_token_id=2, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                  attention_bias=False, mlp_bias=False, hidden_act="silu"),
    "mistral": dict(num_key_value_heads=8, head_dim=64, max_position_embeddings=4096 * 32, bos_token_id=1,
                    eos_token_id=2, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                    sliding_window=4096, hidden_act="silu"),
    "qwen2": dict(num_key_value_heads=32, max_position_embeddings=32768, bos_token_id=None, eos_token_id=None,
                  rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False, use_sliding_window=False,
                  max_window_layers=28, hidden_act="silu"),
    "qwen3": dict(num_key_value_heads=32, head_dim=128, max_position_embeddings=32768, bos_token_id=None,
                  eos_token_id=None, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                  attention_bias=False, use_sliding_window=False, max_window_layers=28, hidden_act="silu"),
}


def theta(cfg):
    if getattr(cfg, "rope_theta", None) is not None:
        return cfg.rope_theta
    rp = getattr(cfg, "rope_parameters", None) or {}
    return rp.get("rope_theta")


def main():
    bad = 0
    print(f"transformers {transformers.__version__}")
    for model_type, expected in EXPECTED.items():
        cfg = AutoConfig.for_model(model_type, **SHAPE)
        for key, want in expected.items():
            got = theta(cfg) if key == "rope_theta" else getattr(cfg, key, "<absent>")
            if key == "head_dim" and got is None:
                got = SHAPE["hidden_size"] // SHAPE["num_attention_heads"]
            if got != want:
                print(f"MISMATCH {model_type}.{key}: transformers {got!r}, brisk assumes {want!r}")
                bad += 1
        # Qwen2/Qwen3 keep sliding_window only when use_sliding_window is true.
        if model_type in ("qwen2", "qwen3"):
            on = AutoConfig.for_model(model_type, use_sliding_window=True, **SHAPE)
            print(f"{model_type}: sliding_window off={cfg.sliding_window!r} on={on.sliding_window!r}")
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/fuzz/corpus/fuzz_hf_config/*.json"))):
        with open(path) as f:
            j = json.load(f)
        if "model_type" not in j:
            continue  # generation_config seed
        try:
            cfg = AutoConfig.for_model(j.pop("model_type"), **j)
            print(f"ok {os.path.basename(path)}: kv={cfg.num_key_value_heads} theta={theta(cfg)} "
                  f"rope={getattr(cfg, 'rope_scaling', None) or getattr(cfg, 'rope_parameters', None)}")
        except Exception as e:  # report and go on: one bad seed should not hide the others
            print(f"MISMATCH {os.path.basename(path)} does not load: {e}")
            bad += 1
    print("all defaults agree" if bad == 0 else f"{bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
