#!/usr/bin/env python3
"""What run-time dispatch costs and gives: Yolo-Fastest VOC's float forward
(320x320, batch 1, 1 thread) on this checkout's build for this machine
(scripts/setup.sh: -march=native) with the kernels' level capped by the
setting simd (auto: the CPU's best; 1: AVX2 + FMA, x86-64-v3; 0: SSE4.2,
x86-64-v2), and on the portable build a wheel gets (-march=x86-64-v2 for
everything, the float conv kernels and the ternary kernels dispatched at
run time), built into build/portable-py by tests/test_portable.py or by

  DARKNET_MARCH=x86-64-v2 python3 setup.py build_ext --build-lib build/portable-py/lib \\
      --build-temp build/portable-py/tmp   # and copy darknet_py/*.py next to the .so

Each configuration runs in its own process (two builds cannot share one);
they alternate round by round and the median over rounds of each process's
median forward time is reported.

  python3 bench/bench_portable.py [--rounds 5] [--reps 30]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(os.path.dirname(ROOT), "shared", "models", "yolo-fastest")
PORTABLE = os.path.join(ROOT, "build", "portable-py", "lib")

WORKER = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import darknet_py as dn
from darknet_py import _core
dn.set_option("simd", sys.argv[2])
net = _core.Network(sys.argv[3], 1, 0)
net.load_weights(sys.argv[4])
net.set_threads(1)
x = np.random.default_rng(0).random((1, 3, 320, 320), dtype=np.float32)
for _ in range(3):
    net.forward(x)
ts = []
for _ in range(int(sys.argv[5])):
    t = time.perf_counter()
    net.forward(x)
    ts.append(time.perf_counter() - t)
print(json.dumps({"ms": 1000 * float(np.median(ts)), "level": _core.isa_level()}))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    cfg = os.path.join(MODELS, "yolo-fastest-voc.cfg")
    weights = os.path.join(MODELS, "yolo-fastest-voc.weights")
    if not os.path.exists(cfg):
        sys.exit(f"{cfg} not found (../shared absent)")
    configs = [("native build", ROOT, "auto"), ("native build", ROOT, "1"), ("native build", ROOT, "0")]
    if os.path.exists(os.path.join(PORTABLE, "darknet_py")):
        configs.append(("portable build", PORTABLE, "auto"))
    else:
        print(f"({PORTABLE} not built: run tests/test_portable.py first for the portable row)")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    times = {c: [] for c in configs}
    levels = {}
    for _ in range(args.rounds):
        for c in configs:
            r = subprocess.run([sys.executable, "-c", WORKER, c[1], c[2], cfg, weights, str(args.reps)],
                               capture_output=True, text=True, env=env, check=True)
            out = json.loads(r.stdout)
            times[c].append(out["ms"])
            levels[c] = out["level"]
    base = float(np.median(times[configs[0]]))
    print("| build | simd | float kernels at | forward ms | vs native auto |")
    print("|---|---|---|---|---|")
    for c in configs:
        ms = float(np.median(times[c]))
        print(f"| {c[0]} | {c[2]} | x86-64-v{levels[c]} | {ms:.2f} | {ms / base:.2f}x |")


if __name__ == "__main__":
    main()
