#!/usr/bin/env python3
"""Ternary inference: per-layer and whole-network time per image of fully
ternary networks (every [convolutional] of the reference cfg with
ternary=1, written to a temporary copy), on the three ternary kernels of
darknet_py, with 1 and 2 threads, in one run:

  off     the project's float32 path (ternary_kernel=off: the TWN weights,
          cached and remade only when the float weights change, then
          Winograd / GEMM)
  float   the exact add/subtract ternary kernel (ternary_kernel=float)
  int8    the int8 ternary kernel (ternary_kernel=int8)
  fp32    for reference, the same network as a plain float network (the
          original cfg, no ternary=1) with the same (TWN) weights: the float
          path without the TWN cache
  opencv  OpenCV's DNN float32 forward (cv2.dnn.readNetFromDarknet) of the
          original cfg with the same TWN .weights

Per layer: each conv layer as its own network (bench_conv.py's one-layer
cfg + 1x1 sink). Whole network: one random 416x416 image. Timing: rounds
that run every path in turn (interleaved, so load changes on a shared
machine hit all alike), the median over rounds of wall-clock time; the
load average before and after is printed. Also the file sizes (.weights vs
packed) and the peak resident memory (VmHWM of a subprocess per
configuration that loads the network and runs 3 forwards).

  python3 bench/bench_ternary.py [--cfgs yolov2-tiny-voc,yolov3-tiny] [--size 416]
      [--threads 1,2] [--rounds 9] [--no-layers] [--no-memory]
"""
import argparse
import atexit
import os

# NumPy's own BLAS threads (only used to make inputs here) would otherwise
# keep spinning next to the kernels being timed.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
import darknet_py  # noqa: E402
from darknet_py import _core, ternary  # noqa: E402
from darknet_py.cfgfile import write_cfg  # noqa: E402
from darknet_py.stages import conv_indices, stage_sections  # noqa: E402
from bench_conv import conv_layers, layer_cfg, sgemm_gflops  # noqa: E402

REF = os.path.join(os.path.dirname(ROOT), "shared", "reference", "darknet-cfg")
KERNELS = ("off", "float", "int8")


def ternary_copy(cfg, out):
    """cfg with ternary=1 on every conv layer, written to out."""
    n = len(conv_indices(stage_sections(cfg, [])))
    write_cfg(stage_sections(cfg, range(n)), out)
    return out


def interleaved(paths, rounds, warmup=1, cpu=None):
    """paths: {name: callable}. Median wall seconds per call over rounds,
    the paths alternating within each round. cpu (a dict) also receives
    the median CPU time of the calling thread (meaningful with 1 thread:
    the kernels then run on the caller; not inflated by other processes)."""
    for fn in paths.values():
        for _ in range(warmup):
            fn()
    ts = {k: [] for k in paths}
    cs = {k: [] for k in paths}
    for _ in range(rounds):
        for k, fn in paths.items():
            c, t = time.thread_time(), time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t)
            cs[k].append(time.thread_time() - c)
    if cpu is not None:
        cpu.update({k: float(np.median(v)) for k, v in cs.items()})
    return {k: float(np.median(v)) for k, v in ts.items()}


def opencv_net(cv2, cfg, weights):
    net = cv2.dnn.readNetFromDarknet(cfg, weights)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return net


def kernel_runner(net, x, kernel):
    def run():
        net.ternary_kernel = kernel
        net.forward(x)
    return run


def cv_runner(cvnet, x, outs=None):
    def run():
        cvnet.setInput(x)
        cvnet.forward(outs) if outs else cvnet.forward()
    return run


def fmt(v):
    return f"{v * 1e3:.2f}"


def per_layer(cfg, tcfg, size, threads, rounds, cv2, tmp):
    """Per-layer table of the conv layers of cfg (ternary copy tcfg)."""
    convs = conv_layers(cfg, size)
    rows = []
    for conv in convs:
        base = os.path.join(tmp, f"L{conv['index']}")
        layer_cfg(conv, base + ".cfg")
        tconv = dict(conv, opts=dict(conv["opts"], ternary=1))
        layer_cfg(tconv, base + "-t.cfg")
        tnet = darknet_py.Network(base + "-t.cfg", seed=conv["index"])
        tnet.save_weights(base + ".weights")  # TWN values
        fnet = darknet_py.Network(base + ".cfg", base + ".weights")
        x = np.random.default_rng(conv["index"]).random((1, conv["c"], conv["h"], conv["w"]), dtype=np.float32)
        cvnet = opencv_net(cv2, base + ".cfg", base + ".weights") if cv2 else None
        rows.append((conv, tnet, fnet, x, cvnet))
    out = {}
    for t in threads:
        if cv2:
            cv2.setNumThreads(t)
        res = []
        for conv, tnet, fnet, x, cvnet in rows:
            tnet._net.set_threads(t)
            fnet._net.set_threads(t)
            paths = {"fp32": lambda fnet=fnet, x=x: fnet.forward(x)}
            for k in KERNELS:
                paths[k] = kernel_runner(tnet, x, k)
            if cvnet is not None:
                paths["opencv"] = cv_runner(cvnet, x)
            res.append((conv, tnet.layers[0]["bflops"], interleaved(paths, rounds)))
        out[t] = res
    return out


def print_layers(name, res, t, cv):
    cols = ["fp32", "off", "float", "int8"] + (["opencv"] if cv else [])
    print(f"#### {name}, {t} thread(s), per conv layer (ms, median)\n")
    print("| layer | input | filters | size/stride | int8 path | BFLOP | " + " | ".join(cols) +
          " | off / int8 | fp32 / int8 | float / int8 |" + (" opencv / int8 |" if cv else ""))
    print("|" + "---|" * (6 + len(cols) + 3 + (1 if cv else 0)))
    tot = {c: 0.0 for c in cols}
    tot3 = {c: 0.0 for c in cols}
    for conv, bflop, r in res:
        o = conv["opts"]
        k, s = int(o.get("size", 1)), int(o.get("stride", 1))
        for c in cols:
            tot[c] += r[c]
            if k == 3:
                tot3[c] += r[c]
        pad = int(o.get("pad", 0)) * (k // 2) if "padding" not in o else int(o["padding"])
        algo = _core.ternary_algo(1, conv["c"], conv["h"], conv["w"], int(o["filters"]), k, s, pad,
                                  int(o.get("groups", 1)))
        print(f"| {conv['index']} | {conv['c']}x{conv['h']}x{conv['w']} | {o['filters']} | {k}/{s} | {algo} | "
              f"{bflop:.3f} | " +
              " | ".join(fmt(r[c]) for c in cols) +
              f" | {r['off'] / r['int8']:.2f}x | {r['fp32'] / r['int8']:.2f}x | {r['float'] / r['int8']:.2f}x |" +
              (f" {r['opencv'] / r['int8']:.2f}x |" if cv else ""))
    for label, tt in (("all 3x3", tot3), ("all", tot)):
        print(f"| {label} | | | | | | " + " | ".join(fmt(tt[c]) for c in cols) +
              f" | {tt['off'] / tt['int8']:.2f}x | {tt['fp32'] / tt['int8']:.2f}x | {tt['float'] / tt['int8']:.2f}x |" +
              (f" {tt['opencv'] / tt['int8']:.2f}x |" if cv else ""))
    print()


MEM_SCRIPT = r"""
import os, sys
import numpy as np
sys.path.insert(0, {root!r})
kind, cfg, weights, kernel, size = sys.argv[1:6]
x = np.random.default_rng(0).random((1, 3, int(size), int(size)), dtype=np.float32)
if kind == "none":
    pass
elif kind == "opencv":
    import cv2
    cv2.setNumThreads(1)
    net = cv2.dnn.readNetFromDarknet(cfg, weights)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    for _ in range(3):
        net.setInput(x)
        net.forward(net.getUnconnectedOutLayersNames())
else:
    import darknet_py
    net = darknet_py.Network(cfg, weights, threads=1, ternary_kernel=kernel)
    for _ in range(3):
        net.forward(x)
# VmHWM: the peak of this process image (ru_maxrss would include the
# parent's peak, which Linux carries across fork and exec)
print([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0])
"""


def peak_rss(kind, cfg, weights, kernel, size):
    """Peak resident set (MiB, VmHWM) of a fresh process doing one configuration."""
    code = MEM_SCRIPT.format(root=ROOT)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code, kind, cfg, weights, kernel, str(size)],
                       capture_output=True, text=True, env=env)
    if r.returncode:
        return float("nan")
    return int(r.stdout.strip().splitlines()[-1]) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfgs", default="yolov2-tiny-voc,yolov3-tiny",
                    help="names in ../shared/reference/darknet-cfg or cfg paths")
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--layer-rounds", type=int, default=7)
    ap.add_argument("--no-layers", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-opencv", action="store_true")
    args = ap.parse_args()

    cv2 = None
    if not args.no_opencv:
        try:
            import cv2
        except ImportError:
            print("(cv2 not importable: no OpenCV column; pip install \"opencv-python-headless<5\")", file=sys.stderr)
    threads = [int(t) for t in args.threads.split(",")]
    tmp = tempfile.mkdtemp(prefix="bench_ternary_")
    atexit.register(shutil.rmtree, tmp, True)  # the temporary cfgs and weights
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)

    print(f"# ternary inference, batch 1, {args.size}x{args.size}, median of interleaved rounds "
          f"({args.rounds} whole-network, {args.layer_rounds} per-layer)"
          + (f"; OpenCV {cv2.__version__}" if cv2 else "") + "\n")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores); ternary SIMD: "
          f"{('portable C', 'AVX2', 'AVX-512 VNNI')[_core.ternary_simd()]}")
    gemm = {t: sgemm_gflops(t) for t in threads}
    for t in threads:
        print(f"NumPy sgemm 1024^3, {t} thread(s): {gemm[t]:.1f} GFLOPS")
    print()

    summary, cpu_summary, sizes, mems = [], [], [], []
    for name in args.cfgs.split(","):
        cfg = name if os.path.exists(name) else os.path.join(REF, name + ".cfg")
        name = os.path.splitext(os.path.basename(cfg))[0]
        tcfg = ternary_copy(cfg, os.path.join(tmp, name + "-ternary.cfg"))
        tnet = darknet_py.Network(tcfg, seed=0)
        wpath, ppath = os.path.join(tmp, name + ".weights"), os.path.join(tmp, name + ".tpk")
        tnet.save_weights(wpath)  # the ternarised .weights
        ternary.pack(tcfg, wpath, ppath)
        sizes.append((name, os.path.getsize(wpath), os.path.getsize(ppath)))
        tnet = darknet_py.Network(tcfg, ppath)
        fnet = darknet_py.Network(cfg, wpath)
        bflop = sum(l["bflops"] for l in tnet.layers)
        cvnet = outs = None
        if cv2:
            cvnet = opencv_net(cv2, cfg, wpath)
            outs = cvnet.getUnconnectedOutLayersNames()

        if not args.no_layers:
            res = per_layer(cfg, tcfg, args.size, threads, args.layer_rounds, cv2, tmp)
            for t in threads:
                print_layers(name, res[t], t, cv2 is not None)

        for t in threads:
            tnet._net.set_threads(t)
            fnet._net.set_threads(t)
            paths = {"fp32": lambda: fnet.forward(x)}
            for k in KERNELS:
                paths[k] = kernel_runner(tnet, x, k)
            if cvnet is not None:
                cv2.setNumThreads(t)
                paths["opencv"] = cv_runner(cvnet, x, outs)
            cpu = {}
            summary.append((name, bflop, t, interleaved(paths, args.rounds, cpu=cpu)))
            if t == 1:
                cpu_summary.append((name, bflop, t, cpu))

        if not args.no_memory:
            base = peak_rss("none", tcfg, wpath, "off", args.size)
            row = {"python + numpy + darknet_py imported": base}
            row["fp32 (float cfg, .weights)"] = peak_rss("dn", cfg, wpath, "off", args.size)
            for k in KERNELS:
                row[f"{k} (ternary cfg, packed)"] = peak_rss("dn", tcfg, ppath, k, args.size)
            if cv2:
                row["opencv (float cfg, .weights)"] = peak_rss("opencv", cfg, wpath, "off", args.size)
            mems.append((name, row))

    cols = ["fp32", "off", "float", "int8"] + (["opencv"] if cv2 else [])
    print("### Whole network (ms per image, median)\n")
    print("| network | BFLOP | threads | " + " | ".join(f"{c} ms" for c in cols) +
          " | off / int8 | fp32 / int8 | float / int8 |" + (" opencv / int8 |" if cv2 else ""))
    print("|" + "---|" * (3 + len(cols) + 3 + (1 if cv2 else 0)))
    for name, bflop, t, r in summary:
        print(f"| {name} | {bflop:.2f} | {t} | " + " | ".join(f"{r[c] * 1e3:.1f}" for c in cols) +
              f" | {r['off'] / r['int8']:.2f}x | {r['fp32'] / r['int8']:.2f}x | {r['float'] / r['int8']:.2f}x |" +
              (f" {r['opencv'] / r['int8']:.2f}x |" if cv2 else ""))
    if cpu_summary:
        print("\n1 thread, CPU time of the calling thread (ms per image, median; not counting time "
              "the process waited for a core):\n")
        print("| network | BFLOP | threads | " + " | ".join(f"{c} ms" for c in cols) +
              " | off / int8 | fp32 / int8 | float / int8 |" + (" opencv / int8 |" if cv2 else ""))
        print("|" + "---|" * (3 + len(cols) + 3 + (1 if cv2 else 0)))
        for name, bflop, t, r in cpu_summary:
            print(f"| {name} | {bflop:.2f} | {t} | " + " | ".join(f"{r[c] * 1e3:.1f}" for c in cols) +
                  f" | {r['off'] / r['int8']:.2f}x | {r['fp32'] / r['int8']:.2f}x | {r['float'] / r['int8']:.2f}x |" +
                  (f" {r['opencv'] / r['int8']:.2f}x |" if cv2 else ""))
    print("\n### File sizes\n")
    print("| network | .weights bytes | packed bytes | ratio |")
    print("|---|---|---|---|")
    for name, w, p in sizes:
        print(f"| {name} | {w} | {p} | 1/{w / p:.2f} |")
    if mems:
        print("\n### Peak resident memory (MiB, VmHWM of a fresh process: load, 3 forwards, 1 thread)\n")
        keys = list(mems[0][1])
        print("| network | " + " | ".join(keys) + " |")
        print("|---|" + "---|" * len(keys))
        for name, row in mems:
            print(f"| {name} | " + " | ".join(f"{row[k]:.0f}" for k in keys) + " |")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}; this process's peak RSS: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
