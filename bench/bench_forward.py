#!/usr/bin/env python3
"""Whole-network forward time per image, darknet_py vs OpenCV's DNN module
(cv2.dnn.readNetFromDarknet) on the same cfg and the same weights, with 1
and 2 threads, in one run; prints a markdown table.

Weights are darknet_py's random initialisation written to a temporary
.weights file with save_weights, which both frameworks then read. The
input is one random image (1 x 3 x size x size in [0, 1)). OpenCV computes
all unconnected outputs (every yolo/region head), as an application would.
Timing: the two frameworks alternate within each round (so load changes on
a shared machine hit both alike); the median over rounds is reported, with
the machine's plain sgemm GFLOPS (NumPy matmul in a subprocess) measured in
the same run for scale.

  python3 bench/bench_forward.py [CFG ...] [--size 416] [--threads 1,2] [--rounds 15]

Depends only on darknet_py, numpy and cv2 (pip install "opencv-python-headless<5").
A cfg that darknet_py cannot build yet (a layer type not implemented) gets
a row saying so instead of numbers.
"""
import argparse
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import darknet_py  # noqa: E402

REF = os.path.join(os.path.dirname(ROOT), "shared", "reference", "darknet-cfg")
DEFAULT_CFGS = [os.path.join(REF, n) for n in ("yolov2-tiny-voc.cfg", "yolov3-tiny.cfg", "yolov2-voc.cfg")]


def sgemm_gflops(threads, n=1024, reps=10):
    """NumPy float32 matmul GFLOPS with its BLAS limited to `threads`."""
    code = (f"import numpy as np, time\n"
            f"a = np.random.rand({n}, {n}).astype(np.float32); b = np.random.rand({n}, {n}).astype(np.float32)\n"
            f"a @ b\nts = []\n"
            f"for _ in range({reps}):\n"
            f"    t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)\n"
            f"print(2 * {n}**3 / np.median(ts) / 1e9)\n")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def interleaved(paths, rounds, warmup=2):
    """paths: {name: callable}; median seconds per call over rounds, the
    paths alternating within each round."""
    for fn in paths.values():
        for _ in range(warmup):
            fn()
    ts = {k: [] for k in paths}
    for _ in range(rounds):
        for k, fn in paths.items():
            t = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in ts.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cfgs", nargs="*", default=DEFAULT_CFGS)
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()

    import cv2
    threads = [int(t) for t in args.threads.split(",")]
    tmp = tempfile.mkdtemp(prefix="bench_forward_")
    atexit.register(shutil.rmtree, tmp, True)  # the temporary cfgs and weights
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)

    gemm = {t: sgemm_gflops(t) for t in threads}
    print(f"# forward, batch 1, {args.size}x{args.size}, median of {args.rounds} interleaved rounds; "
          f"OpenCV {cv2.__version__}\n")
    for t in threads:
        print(f"NumPy sgemm 1024^3, {t} thread(s): {gemm[t]:.1f} GFLOPS")
    print()
    print("| network | BFLOP | threads | darknet_py ms | OpenCV ms | OpenCV / darknet_py | "
          "darknet_py GFLOPS | OpenCV GFLOPS | sgemm GFLOPS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cfg in args.cfgs:
        name = os.path.splitext(os.path.basename(cfg))[0]
        try:
            net = darknet_py.Network(cfg, batch=1, seed=0)
            wpath = os.path.join(tmp, name + ".weights")
            net.save_weights(wpath)
            net.forward(x)
        except Exception as e:  # a layer type not implemented yet, ...
            msg = str(e).splitlines()[0][:120]
            print(f"| {name} | | | darknet_py cannot run it: {msg} | | | | | |")
            continue
        bflop = sum(l["bflops"] for l in net.layers)
        cvnet = cv2.dnn.readNetFromDarknet(cfg, wpath)
        cvnet.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        cvnet.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        outs = cvnet.getUnconnectedOutLayersNames()

        def run_cv():
            cvnet.setInput(x)
            cvnet.forward(outs)

        for t in threads:
            net._net.set_threads(t)
            cv2.setNumThreads(t)
            r = interleaved({"dn": lambda: net.forward(x), "cv": run_cv}, args.rounds)
            print(f"| {name} | {bflop:.2f} | {t} | {r['dn'] * 1e3:.1f} | {r['cv'] * 1e3:.1f} | "
                  f"{r['cv'] / r['dn']:.2f}x | {bflop / r['dn']:.0f} | {bflop / r['cv']:.0f} | {gemm[t]:.0f} |")
    print("\n(GFLOPS = the network's direct-convolution FLOPs / time; Winograd does fewer multiplications, "
          "so this can exceed the sgemm rate)")


if __name__ == "__main__":
    main()
