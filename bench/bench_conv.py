#!/usr/bin/env python3
"""Per-layer timing of the [convolutional] forward paths on the conv shapes of
a Darknet cfg (default: yolov2-tiny-voc at 416x416), side by side:

  ref       the original path: im2col + cblas_sgemm (OpenBLAS) + BN pass + activation pass
  gemm      implicit im2col + the project's packed GEMM with fused epilogue
  winograd  Winograd F(4x4,3x3) (3x3 stride-1 groups=1 layers only)
  direct    direct register-blocked kernel (stride-1 groups=1 layers with <= 16
            input channels only: it is meant for the first layer)
  auto      what the library picks by default
  opencv    cv2.dnn on the same one-layer cfg and weights (when cv2 imports)

Each layer runs as its own network (input = the layer's input shape) followed
by a 1x1 stride-W conv with one filter, so that copying the layer's output
back to Python is not timed. The paths are forced with the setting conv_algo.
Timing: rounds that run every path in turn (interleaved, so load changes on
a shared machine hit all alike); the median over rounds is reported. ref is
timed in its own rounds first, followed by a pause: OpenBLAS and OpenMP
threads keep spinning for a while after it and would slow down whatever ran
next (in a whole network, that cost falls on the following layers). The
machine's plain sgemm GFLOPS (NumPy matmul, in a subprocess per thread count)
is measured in the same run.

  python3 bench/bench_conv.py [--cfg PATH] [--size 416] [--threads 1,2] [--rounds 15]
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

DEFAULT_CFG = os.path.join(os.path.dirname(ROOT), "shared", "reference", "darknet-cfg", "yolov2-tiny-voc.cfg")


def read_cfg(path):
    """[(section, {key: value})] in file order."""
    secs = []
    with open(path) as f:
        for line in f:
            line = line.split("#")[0].split(";")[0].strip()
            if not line:
                continue
            if line.startswith("["):
                secs.append((line.strip("[]").strip(), {}))
            elif "=" in line and secs:
                k, v = line.split("=", 1)
                secs[-1][1][k.strip()] = v.strip()
    return secs


def conv_layers(path, size):
    """Input shape and options of every [convolutional] layer of the cfg at
    size x size (shape inference for the layer types of the YOLO cfgs)."""
    secs = read_cfg(path)
    net = secs[0][1]
    c, h, w = int(net.get("channels", 3)), size, size
    shapes, convs = [], []
    for i, (name, o) in enumerate(secs[1:]):
        if name in ("convolutional", "conv"):
            k, s = int(o.get("size", 1)), int(o.get("stride", 1))
            pad = k // 2 if int(o.get("pad", 0)) else int(o.get("padding", 0))
            convs.append(dict(index=i, c=c, h=h, w=w, opts=o))
            c = int(o["filters"])
            h = (h + 2 * pad - k) // s + 1
            w = (w + 2 * pad - k) // s + 1
        elif name in ("maxpool", "max"):
            k = int(o.get("size", 1))
            s = int(o.get("stride", k))
            p = int(o.get("padding", k - 1))
            h = (h + p - k) // s + 1
            w = (w + p - k) // s + 1
        elif name == "avgpool":
            h = w = 1
        elif name == "route":
            ls = [int(x) for x in o["layers"].split(",")]
            ls = [x if x >= 0 else i + x for x in ls]
            c = sum(shapes[x][0] for x in ls)
            h, w = shapes[ls[0]][1], shapes[ls[0]][2]
        elif name == "reorg":
            s = int(o.get("stride", 2))
            c, h, w = c * s * s, h // s, w // s
        elif name == "upsample":
            s = int(o.get("stride", 2))
            h, w = h * s, w * s
        shapes.append((c, h, w))
    return convs


def layer_cfg(conv, path):
    """A cfg with just this layer plus a 1x1 stride-W sink conv."""
    o = dict(conv["opts"])
    lines = ["[net]", f"width={conv['w']}", f"height={conv['h']}", f"channels={conv['c']}", "batch=1",
             "", "[convolutional]"] + [f"{k}={v}" for k, v in o.items()]
    lines += ["", "[convolutional]", "filters=1", "size=1", f"stride={max(conv['h'], conv['w'])}",
              "activation=linear", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


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


def time_paths(paths, rounds, inner):
    """paths: {name: callable}. Median over rounds of the mean time of
    `inner` calls, paths interleaved within each round. Seconds."""
    for fn in paths.values():
        fn()
    ts = {k: [] for k in paths}
    for _ in range(rounds):
        for k, fn in paths.items():
            t = time.perf_counter()
            for _ in range(inner):
                fn()
            ts[k].append((time.perf_counter() - t) / inner)
    return {k: float(np.median(v)) for k, v in ts.items()}


def dn_runner(net, x, algo):
    def run():
        darknet_py.set_option("conv_algo", algo)
        net.forward(x)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfg", default=DEFAULT_CFG)
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--inner", type=int, default=2, help="forwards per timed sample")
    ap.add_argument("--no-opencv", action="store_true")
    ap.add_argument("--layers", default="", help="comma-separated layer indices (default: all convs)")
    ap.add_argument("--paths", default="ref,gemm,winograd,direct,auto")
    args = ap.parse_args()

    cv2 = None
    if not args.no_opencv:
        try:
            import cv2
        except ImportError:
            print("(cv2 not importable: no OpenCV column)", file=sys.stderr)
    threads = [int(t) for t in args.threads.split(",")]
    convs = conv_layers(args.cfg, args.size)
    if args.layers:
        keep = {int(i) for i in args.layers.split(",")}
        convs = [c for c in convs if c["index"] in keep]
    want = args.paths.split(",")
    tmp = tempfile.mkdtemp(prefix="bench_conv_")
    atexit.register(shutil.rmtree, tmp, True)  # the temporary cfgs and weights
    rng = np.random.default_rng(0)

    print(f"# {os.path.basename(args.cfg)} at {args.size}x{args.size}, batch 1, "
          f"median of {args.rounds} interleaved rounds x {args.inner} forwards\n")
    gemm = {t: sgemm_gflops(t) for t in threads}
    for t in threads:
        print(f"NumPy sgemm 1024^3, {t} thread(s): {gemm[t]:.1f} GFLOPS")
    print()

    nets = []
    for conv in convs:
        cfg = os.path.join(tmp, f"layer{conv['index']}.cfg")
        layer_cfg(conv, cfg)
        net = darknet_py.Network(cfg, seed=conv["index"])
        wpath = os.path.join(tmp, f"layer{conv['index']}.weights")
        net.save_weights(wpath)
        x = rng.random((1, conv["c"], conv["h"], conv["w"]), dtype=np.float32)
        cvnet = None
        if cv2 is not None:
            cvnet = cv2.dnn.readNetFromDarknet(cfg, wpath)
            cvnet.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            cvnet.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        nets.append((conv, net, x, cvnet))

    for t in threads:
        if cv2 is not None:
            cv2.setNumThreads(t)
        cols = [c for c in ("ref", "gemm", "winograd", "direct", "auto") if c in want or c == "auto"]
        cols += ["opencv"] if cv2 is not None else []
        print(f"## {t} thread(s)\n")
        print("| layer | input | filters | size/stride | BFLOP | " +
              " | ".join(f"{c} ms" for c in cols) + " | auto GFLOPS | auto vs ref | auto vs opencv |")
        print("|" + "---|" * (8 + len(cols)))
        tot = {c: 0.0 for c in cols}
        tot_flops = 0.0
        for conv, net, x, cvnet in nets:
            net._net.set_threads(t)
            o = conv["opts"]
            k, s = int(o.get("size", 1)), int(o.get("stride", 1))
            g1 = int(o.get("groups", 1)) == 1
            applies = {"ref": True, "gemm": True, "winograd": k == 3 and s == 1 and g1,
                       "direct": s == 1 and g1 and conv["c"] <= 16, "auto": True}
            paths = {c: dn_runner(net, x, c) for c in cols if c != "opencv" and applies[c]}
            if cvnet is not None:
                def run_cv(cvnet=cvnet, x=x):
                    cvnet.setInput(x)
                    cvnet.forward()
                paths["opencv"] = run_cv
            r = {}
            if "ref" in paths:
                r.update(time_paths({"ref": paths.pop("ref")}, args.rounds, args.inner))
                time.sleep(0.3)
            r.update(time_paths(paths, args.rounds, args.inner))
            darknet_py.set_option("conv_algo", None)
            bflop = net.layers[0]["bflops"]
            tot_flops += bflop
            for c in cols:
                tot[c] += r.get(c, r["auto"])
            cells = [f"{r[c] * 1e3:.2f}" if c in r else "-" for c in cols]
            vs_cv = f"{r['opencv'] / r['auto']:.2f}x" if "opencv" in r else "-"
            vs_ref = f"{r['ref'] / r['auto']:.2f}x" if "ref" in r else "-"
            print(f"| {conv['index']} | {conv['c']}x{conv['h']}x{conv['w']} | {o['filters']} | {k}/{s} | "
                  f"{bflop:.3f} | " + " | ".join(cells) +
                  f" | {bflop / r['auto']:.1f} | {vs_ref} | {vs_cv} |")
        cells = [f"{tot[c] * 1e3:.2f}" for c in cols]
        vs_cv = f"{tot['opencv'] / tot['auto']:.2f}x" if "opencv" in tot else "-"
        vs_ref = f"{tot['ref'] / tot['auto']:.2f}x" if "ref" in tot else "-"
        print(f"| all | | | | {tot_flops:.3f} | " + " | ".join(cells) +
              f" | {tot_flops / tot['auto']:.1f} | {vs_ref} | {vs_cv} |")
        print(f"\n(GFLOPS = direct-convolution FLOPs / time, also for Winograd; in the totals a path that "
              f"does not apply to a layer counts with its auto time; NumPy sgemm here: {gemm[t]:.1f} GFLOPS)\n")


if __name__ == "__main__":
    main()
