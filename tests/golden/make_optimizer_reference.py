#!/usr/bin/env python3
"""Dumps what torch.optim.AdamW, torch.nn.utils.clip_grad_norm_ and transformers' LR schedules do
on a small deterministic problem, to tests/golden/data/optimizer_refs.json (fp32 values as bit
patterns). test_optimizer_golden.cpp replays it through brisk's AdamW / clip_grad_norm / lr_at.
Run on a machine with torch + transformers:
    python3 tests/golden/make_optimizer_reference.py
"""
import json
import os
import struct

import torch
import transformers
from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                          get_linear_schedule_with_warmup)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "optimizer_refs.json")
SCHEDULES = {"constant": get_constant_schedule_with_warmup, "linear": get_linear_schedule_with_warmup,
             "cosine": get_cosine_schedule_with_warmup}


def bits(t):
    return [struct.unpack("<I", struct.pack("<f", v))[0] for v in t.detach().to(torch.float32).flatten().tolist()]


def schedule_lrs(name, base_lr, warmup, total):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    kwargs = {"num_warmup_steps": warmup}
    if name != "constant":
        kwargs["num_training_steps"] = total
    sched = SCHEDULES[name](opt, **kwargs)
    lrs = []
    for _ in range(total + 1):  # one past the end, as a run that finishes on step == total
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def adamw_run(case):
    g = torch.Generator().manual_seed(case["seed"])
    shapes = case["shapes"]
    params = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
    init = [bits(p) for p in params]
    decay = case["decay"]
    groups = [{"params": [p for p, d in zip(params, decay) if d], "weight_decay": case["weight_decay"]},
              {"params": [p for p, d in zip(params, decay) if not d], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=case["lr"], betas=(case["beta1"], case["beta2"]), eps=case["eps"],
                            foreach=False)
    sched = SCHEDULES[case["schedule"]](opt, num_warmup_steps=case["warmup"], num_training_steps=case["steps"]) \
        if case["schedule"] != "constant" else get_constant_schedule_with_warmup(opt, case["warmup"])
    steps = []
    for _ in range(case["steps"]):
        grads = [torch.randn(s, generator=g) * case["grad_scale"] for s in shapes]
        for p, gr in zip(params, grads):
            p.grad = gr.clone()
        norm = torch.nn.utils.clip_grad_norm_(params, case["max_norm"])
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        steps.append({"grads": [bits(gr) for gr in grads], "norm": float(norm), "lr": lr})
    state = [{"exp_avg": bits(opt.state[p]["exp_avg"]), "exp_avg_sq": bits(opt.state[p]["exp_avg_sq"])}
             for p in params]
    return dict(case, init=init, history=steps, final=[bits(p) for p in params], state=state)


def main():
    cases = [
        # Odd sizes exercise torch's vectorised body and scalar tail; grad_scale 10 makes clipping bite.
        {"name": "linear_clip_decay", "seed": 1, "shapes": [67, 5, 1000], "decay": [True, False, True], "lr": 2e-3,
         "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1, "warmup": 2, "steps": 8,
         "schedule": "linear", "max_norm": 1.0, "grad_scale": 10.0},
        {"name": "cosine_noclip", "seed": 2, "shapes": [33, 17], "decay": [True, True], "lr": 1e-2,
         "beta1": 0.8, "beta2": 0.95, "eps": 1e-6, "weight_decay": 0.01, "warmup": 0, "steps": 6,
         "schedule": "cosine", "max_norm": 100.0, "grad_scale": 0.01},
        {"name": "constant_beta1_above_half", "seed": 3, "shapes": [40], "decay": [False], "lr": 5e-3,
         "beta1": 0.3, "beta2": 0.9, "eps": 1e-8, "weight_decay": 0.0, "warmup": 3, "steps": 5,
         "schedule": "constant", "max_norm": 0.5, "grad_scale": 1.0},
    ]
    schedules = []
    for name in SCHEDULES:
        for warmup, total in [(0, 10), (3, 10), (10, 10), (1, 1), (7, 100)]:
            schedules.append({"schedule": name, "base_lr": 3e-4, "warmup": warmup, "total": total,
                              "lrs": schedule_lrs(name, 3e-4, warmup, total)})
    out = {"torch": torch.__version__, "transformers": transformers.__version__,
           "adamw": [adamw_run(c) for c in cases], "schedules": schedules}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
