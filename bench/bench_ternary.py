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

One random 416x416 image. Timing: rounds that run every path in turn
(interleaved, so load changes on a shared machine hit all alike), the
median over rounds of the wall-clock time of the whole network and, from
the same forwards, of each conv layer inside it (darknet_py:
Network.layers[i]["forward_ms"]; OpenCV: getPerfProfile, its conv, batch
norm and activation layers of that cfg layer). The int8 kernel writes the
output of a conv followed by a 2x2/2 maxpool already pooled: that conv's
time then includes the pooling ("+pool" in the tables). The load average
before and after is printed. Also the file sizes (.weights vs
packed) and the peak resident memory (VmHWM of a subprocess per
configuration that loads the network and runs 3 forwards).

  python3 bench/bench_ternary.py [--cfgs yolov2-tiny-voc,yolov3-tiny] [--size 416]
      [--threads 1,2] [--rounds 9] [--no-layers] [--no-memory] [--no-opencv]
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
from bench_conv import sgemm_gflops  # noqa: E402

REF = os.path.join(os.path.dirname(ROOT), "shared", "reference", "darknet-cfg")
KERNELS = ("off", "float", "int8")


def ternary_copy(cfg, out):
    """cfg with ternary=1 on every conv layer, written to out."""
    n = len(conv_indices(stage_sections(cfg, [])))
    write_cfg(stage_sections(cfg, range(n)), out)
    return out


def interleaved(paths, rounds, warmup=1, cpu=None, layers=None):
    """paths: {name: callable}. Median wall seconds per call over rounds,
    the paths alternating within each round. cpu (a dict) also receives
    the median CPU time of the calling thread (meaningful with 1 thread:
    the kernels then run on the caller; not inflated by other processes);
    layers (a dict) the median of what the function each call returned
    gives, called after the timing (per-layer ms)."""
    for fn in paths.values():
        for _ in range(warmup):
            fn()
    ts = {k: [] for k in paths}
    cs = {k: [] for k in paths}
    ls = {k: [] for k in paths}
    for _ in range(rounds):
        for k, fn in paths.items():
            c, t = time.thread_time(), time.perf_counter()
            r = fn()
            ts[k].append(time.perf_counter() - t)
            cs[k].append(time.thread_time() - c)
            ls[k].append(r())
    if cpu is not None:
        cpu.update({k: float(np.median(v)) for k, v in cs.items()})
    if layers is not None:
        layers.update({k: np.median(np.array(v, float), axis=0) for k, v in ls.items()})
    return {k: float(np.median(v)) for k, v in ts.items()}


def opencv_net(cv2, cfg, weights):
    net = cv2.dnn.readNetFromDarknet(cfg, weights)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return net


def net_runner(net, x, kernel=None):
    """Forward; returns what gives the per-layer ms of that forward."""
    def run():
        if kernel:
            net.ternary_kernel = kernel
        net.forward(x)
        return lambda: [layer["forward_ms"] for layer in net.layers]
    return run


def cv_runner(cv2, cvnet, x, outs, n):
    """OpenCV forward; returns what gives its ms per cfg layer (n of them): each OpenCV
    layer counts at the cfg layer it was made from (name suffix), batch
    norm and activations at the conv before them."""
    owner, last = [], 0
    for name in cvnet.getLayerNames():
        kind, _, idx = name.rpartition("_")
        if kind not in ("bn", "leaky", "relu", "mish", "swish", "logistic", "linear") and idx.isdigit():
            last = int(idx)
        owner.append(last)

    def per_layer():
        ms = np.zeros(n)
        for i, tk in zip(owner, cvnet.getPerfProfile()[1].ravel()):
            ms[i] += tk * 1e3 / cv2.getTickFrequency()
        return ms

    def run():
        cvnet.setInput(x)
        cvnet.forward(outs)
        return per_layer
    return run


def fmt(v):
    return f"{v * 1e3:.2f}"


def print_layers(name, tnet, ms, t, cv):
    """Per conv layer of tnet: the medians ms[path][layer] of one run."""
    cols = ["fp32", "off", "float", "int8"] + (["opencv"] if cv else [])
    print(f"#### {name}, {t} thread(s), per conv layer inside the network (ms, median)\n")
    print("| layer | input | filters | size/stride | int8 path | BFLOP | " + " | ".join(cols) +
          " | off / int8 | fp32 / int8 | float / int8 |" + (" opencv / int8 |" if cv else ""))
    print("|" + "---|" * (6 + len(cols) + 3 + (1 if cv else 0)))
    tot = {c: 0.0 for c in cols}
    tot3 = {c: 0.0 for c in cols}
    tot3p = {c: 0.0 for c in cols}  # with the maxpools right after them
    layers = tnet.layers
    for i, info in enumerate(layers):
        if info["type"] != "convolutional":
            continue
        r = {c: ms[c][i] / 1e3 for c in cols}
        k, s = info["size"], info["stride"]
        pooled = i + 1 < len(layers) and layers[i + 1]["type"] == "maxpool"
        for c in cols:
            tot[c] += r[c]
            if k == 3:
                tot3[c] += r[c]
                tot3p[c] += r[c] + (ms[c][i + 1] / 1e3 if pooled else 0)
        c_, h, w = info["input_shape"]
        algo = _core.testing.ternary_algo(1, c_, h, w, info["filters"], k, s, info["pad"], info["groups"])
        if pooled and ms["int8"][i + 1] == 0:
            algo += "+pool"
        print(f"| {i} | {c_}x{h}x{w} | {info['filters']} | {k}/{s} | {algo} | "
              f"{info['bflops']:.3f} | " +
              " | ".join(fmt(r[c]) for c in cols) +
              f" | {r['off'] / r['int8']:.2f}x | {r['fp32'] / r['int8']:.2f}x | {r['float'] / r['int8']:.2f}x |" +
              (f" {r['opencv'] / r['int8']:.2f}x |" if cv else ""))
    for label, tt in (("all 3x3", tot3), ("all 3x3 + the maxpools after them", tot3p), ("all", tot)):
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

    print(f"# ternary inference, batch 1, {args.size}x{args.size}, median of {args.rounds} interleaved rounds"
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
        cvnet = None
        if cv2:
            cvnet = opencv_net(cv2, cfg, wpath)

        for t in threads:
            tnet._net.set_threads(t)
            fnet._net.set_threads(t)
            paths = {"fp32": net_runner(fnet, x)}
            for k in KERNELS:
                paths[k] = net_runner(tnet, x, k)
            if cvnet is not None:
                cv2.setNumThreads(t)
                paths["opencv"] = cv_runner(cv2, cvnet, x, cvnet.getUnconnectedOutLayersNames(), len(tnet.layers))
            cpu, ms = {}, {}
            summary.append((name, bflop, t, interleaved(paths, args.rounds, cpu=cpu, layers=ms)))
            if t == 1:
                cpu_summary.append((name, bflop, t, cpu))
            if not args.no_layers:
                print_layers(name, tnet, ms, t, cv2 is not None)

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
