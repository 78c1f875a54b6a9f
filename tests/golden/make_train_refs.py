#!/usr/bin/env python3
"""Reference losses and gradients for brisk's training golden tests (CPU, float32).

Runs on the GPU machine (python3 with torch, transformers, peft):

  python3 tests/golden/make_train_refs.py --brisk build/brisk --tok-root DIR --out tests/golden/data

For every case of train_cases.json: creates the tiny model with `brisk init-model` and (LoRA
cases) an adapter with random A and B with `brisk init-adapter` (a zero B would make every A
gradient zero), loads them with transformers + PEFT, runs the case's batch (right-padded,
labels -100 on padding and masked prompts) and records:
  - loss: the mean token loss transformers computes,
  - LoRA cases: every lora_A/lora_B gradient (train_<case>.safetensors, PEFT names without the
    adapter name) and, in eval mode, the logits of row 0 at fixed random vocabulary columns
    (PEFT inference with the adapter: brisk's --adapter path must give the same),
  - full fine-tuning cases: for every weight its gradient's L2 norm and its values at
    `samples_per_tensor` fixed random flat indices.
"""
import argparse
import json
import os
import random
import subprocess
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
    import peft
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    with open(os.path.join(HERE, "train_cases.json")) as f:
        spec = json.load(f)
    tmp = tempfile.mkdtemp(prefix="brisk-train-golden-")
    out = {"transformers_version": transformers.__version__, "peft_version": peft.__version__,
           "torch_version": torch.__version__, "cases": []}
    os.makedirs(args.out, exist_ok=True)
    for case in spec["cases"]:
        d = os.path.join(tmp, case["name"])
        subprocess.run([args.brisk, "init-model", d, "--tokenizer", os.path.join(args.tok_root, case["tokenizer"])]
                       + case["init"], check=True)
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
        rec = {"name": case["name"]}
        if case["method"] == "lora":
            lo = case["lora"]
            ad = os.path.join(tmp, case["name"] + "-adapter")
            cmd = [args.brisk, "init-adapter", d, ad, "--r", str(lo["r"]), "--alpha", str(lo["alpha"]),
                   "--seed", str(lo["seed"]), "--random-b", "--targets"] + lo["targets"]
            if lo["rslora"]:
                cmd.append("--rslora")
            subprocess.run(cmd, check=True)
            model = peft.PeftModel.from_pretrained(model, ad, is_trainable=True)
        model.train()
        rows = case["batch"]
        L = max(len(r["ids"]) for r in rows)
        ids = torch.zeros(len(rows), L, dtype=torch.long)
        mask = torch.zeros(len(rows), L, dtype=torch.long)
        labels = torch.full((len(rows), L), -100, dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["ids"])
            ids[i, :n] = torch.tensor(r["ids"])
            mask[i, :n] = 1
            labels[i, :n] = torch.tensor(r["labels"])
        res = model(input_ids=ids, attention_mask=mask, labels=labels)
        res.loss.backward()
        rec["loss"] = float(res.loss)
        if case["method"] == "lora":
            grads = {}
            for name, p in model.named_parameters():
                if p.requires_grad and "lora_" in name:
                    grads[name.replace(".default", "")] = p.grad.detach().contiguous().clone()
            save_file(grads, os.path.join(args.out, f"train_{case['name']}.safetensors"))
            rec["lora_grads"] = f"train_{case['name']}.safetensors"
            model.eval()
            with torch.no_grad():
                logits = model(input_ids=ids[:1, :len(rows[0]["ids"])]).logits[0]
            rnd = random.Random(len(case["name"]))
            cols = sorted(rnd.sample(range(logits.shape[-1]), spec["columns"]))
            rec["columns"] = cols
            rec["logits"] = [[float(v) for v in row[cols]] for row in logits]
        else:
            samples = {}
            for name, p in model.named_parameters():
                g = p.grad.detach().flatten()
                rnd = random.Random(name)
                idx = sorted(rnd.sample(range(g.numel()), min(spec["samples_per_tensor"], g.numel())))
                samples[name] = {"norm": float(g.double().norm()), "index": idx, "values": [float(g[i]) for i in idx]}
            rec["grads"] = samples
        out["cases"].append(rec)
        print(case["name"], "loss", rec["loss"], flush=True)
    # An adapter written by PEFT itself (not by brisk): brisk's --adapter must load it and give
    # PEFT's logits. Random B so the adapter changes the output.
    case = spec["cases"][0]
    d = os.path.join(tmp, case["name"])
    base = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    torch.manual_seed(0)
    pm = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=12, lora_dropout=0.0,
                                                   target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
                                                   task_type="CAUSAL_LM"))
    for name, p in pm.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    peft_dir = os.path.join(args.out, "peft_adapter")
    pm.save_pretrained(peft_dir)
    pm.eval()
    ids = case["batch"][0]["ids"]
    with torch.no_grad():
        logits = pm(input_ids=torch.tensor([ids])).logits[0]
    rnd = random.Random(99)
    cols = sorted(rnd.sample(range(logits.shape[-1]), spec["columns"]))
    out["peft_saved"] = {"case": case["name"], "ids": ids, "columns": cols,
                         "logits": [[float(v) for v in row[cols]] for row in logits]}
    with open(os.path.join(args.out, "train_refs.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
