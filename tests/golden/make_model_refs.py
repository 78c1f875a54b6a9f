#!/usr/bin/env python3
"""Reference logits and greedy continuations for brisk's model golden tests.

Runs on the GPU machine (python3 with torch + transformers), on the CPU in float32 (so no TF32
or bf16 rounding enters the reference):

  python3 tests/golden/make_model_refs.py --brisk build/brisk --tok-root DIR --out tests/golden/data

For every case of model_cases.json it creates the model with `brisk init-model` (the same
deterministic weights the C++ test creates), loads it with transformers, and records for each
prompt: the logits of every position at `columns_per_row` fixed random vocabulary columns, the
full-vocabulary argmax of every position, and a greedy continuation of `greedy_tokens` tokens
computed by full recomputation (no KV cache, no stop tokens).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brisk", required=True)
    ap.add_argument("--tok-root", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "data"))
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM
    torch.set_grad_enabled(False)

    with open(os.path.join(HERE, "model_cases.json")) as f:
        spec = json.load(f)
    out = {"transformers_version": transformers.__version__, "torch_version": torch.__version__, "cases": []}
    tmp = tempfile.mkdtemp(prefix="brisk-golden-")
    for case in spec["cases"]:
        d = os.path.join(tmp, case["name"])
        cmd = [args.brisk, "init-model", d, "--tokenizer", os.path.join(args.tok_root, case["tokenizer"])] + case["init"]
        subprocess.run(cmd, check=True)
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        V = model.config.vocab_size
        rec = {"name": case["name"], "prompts": []}
        for pi, ids in enumerate(case["prompts"]):
            x = torch.tensor([ids])
            logits = model(x).logits[0].float()
            rnd = random.Random(1000 * pi + len(case["name"]))
            cols = sorted(rnd.sample(range(V), spec["columns_per_row"]))
            seq = list(ids)
            for _ in range(spec["greedy_tokens"]):
                nxt = int(model(torch.tensor([seq])).logits[0, -1].argmax())
                seq.append(nxt)
            rec["prompts"].append({
                "ids": ids,
                "columns": cols,
                "logits": [[float(v) for v in row[cols]] for row in logits],
                "argmax": [int(a) for a in logits.argmax(-1)],
                "greedy": seq[len(ids):],
            })
        out["cases"].append(rec)
        print(f"{case['name']}: {type(model).__name__}, vocab {V}", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "model_refs.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
