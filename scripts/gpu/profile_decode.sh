#!/usr/bin/env bash
# Per-kernel timing of batch-1 decode steps with Nsight Compute (ncu), for finding where a
# decode step's time goes (docs/GPU_WORKFLOW.md). Run on the GPU machine from the repository
# root of the carried tree (.device/ from scripts/gpu/pack.sh):
#   bash scripts/gpu/profile_decode.sh MODEL_DIR [PROMPT] [GEN]
# Writes $OUT/ncu_decode.csv (one row per kernel launch) and prints a summary per kernel name
# and grid, for the launches after the prompt (the decode steps).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/brisk-out}
model=$1 prompt=${2:-8} gen=${3:-4}
[ -x .device/bin/brisk ] || tar -C .device -xJf .device/bin.tar.xz
export LD_LIBRARY_PATH="$PWD/.device/bin/lib:${LD_LIBRARY_PATH:-}"
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1 || true)
[ -n "$ncu" ] || { echo "ncu not found" >&2; exit 1; }
# --cache-control none: a decode step streams weights that never fit in L2 anyway, but the small
# kernels between them read what the previous kernel wrote; flushing would overstate them.
"$ncu" --clock-control none --cache-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum \
  --csv --log-file "$OUT/ncu_decode.csv" \
  .device/bin/brisk bench decode "$model" --device cuda --prompt-tokens "$prompt" --gen-tokens "$gen" >/dev/null
python3 - "$OUT/ncu_decode.csv" <<'PY'
import csv, sys, collections
lines = open(sys.argv[1]).read().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith('"ID"'))
rows = list(csv.reader(lines[start:]))
hdr, rows = rows[0], rows[1:]
ix = {h: i for i, h in enumerate(hdr)}
launches = collections.OrderedDict()
for r in rows:
    if len(r) < len(hdr):
        continue
    d = launches.setdefault(r[0], {"name": r[ix["Kernel Name"]].split("(")[0][-50:], "grid": r[ix["Grid Size"]], "m": {}})
    d["m"][r[ix["Metric Name"]]] = float(r[ix["Metric Value"]].replace(",", ""))
ls = list(launches.values())
# A decode step runs from one embedding launch to the next: take the last complete one.
emb = [i for i, d in enumerate(ls) if "embedding" in d["name"]]
step = ls[emb[-2]:emb[-1]]
total = sum(d["m"]["gpu__time_duration.sum"] for d in step)
print(f"{len(ls)} launches profiled; one decode step: {len(step)} kernels, {total / 1e3:.1f} us of kernel time")
agg = collections.OrderedDict()
for d in step:
    t = agg.setdefault((d["name"], d["grid"]), [0, 0.0, 0.0])
    t[0] += 1
    t[1] += d["m"]["gpu__time_duration.sum"]
    t[2] += d["m"]["dram__bytes_read.sum"]
for (name, grid), (c, t, b) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    print(f"{c:4d} x {t / c / 1e3:8.2f} us = {t / 1e3:9.1f} us {b / t:7.0f} GB/s  grid {grid:>14}  {name}")
PY
