"""Forward time per image of each model of a staged run's results.json
(batch 1, the cfg's input size): the float path and the int8 ternary kernel
(ternary layers on it, float layers as usual), median of --rounds forwards
with the two interleaved; prints a markdown table.

    python experiments/time_rows.py OUT/results.json [--threads 1] [--rounds 30]
"""
import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "bench")]
from bench_forward import interleaved  # noqa: E402
from darknet_py.network import Network  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("results")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--rounds", type=int, default=30)
a = p.parse_args()
rows = json.load(open(a.results))
seen = {}
print(f"| Stage | ternary layers | float ms | int8 ms |  ({a.threads} thread(s), batch 1, median of {a.rounds})")
print("|-|-|-|-|")
for r in rows:
    if r["stage"] in seen:  # several seeds: the same network, timed once
        continue
    nets = {}
    for kernel in ("off", "int8"):
        net = Network(r["cfg"], r["weights"], batch=1, threads=a.threads)
        net.ternary_kernel = kernel
        nets[kernel] = net
    x = np.random.default_rng(0).random(nets["off"].input_shape, dtype=np.float32)
    t = interleaved({k: (lambda n: lambda: n.forward(x))(n) for k, n in nets.items()}, a.rounds, warmup=3)
    seen[r["stage"]] = True
    print(f"| {r['stage']} | {r['ternary_layers']}/{r['conv_layers']} | {1e3 * t['off']:.2f} | {1e3 * t['int8']:.2f} |")
