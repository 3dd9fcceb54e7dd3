"""Training speed on a CUDA device: images/second of full training steps
(forward, the region loss on the host, backward, SGD update) of yolov2-voc
and yolov2-tiny-voc at 416x416, fp32, with float conv layers and with every
conv layer ternary=1 (the device TWN quantiser runs in every step). The
ternary overhead must stay under 5%.

Inputs are random images and boxes made once (this measures the device
work; darknet_py.train overlaps data loading with it in a background
thread). A step is --images images run as --images/--sub-batch sub-batches,
as Darknet's batch/subdivisions. Needs a CUDA build (DARKNET_GPU=1) and a
device; prints a markdown table (and --json FILE) with, per cfg and
[net] workspace_size_limit_MB (--limits: "cfg" keeps the cfg's, default
1024; 0 limits cuDNN to the im2col buffer), the forward algorithms cuDNN
was given and the largest workspace they need.

    python3 bench/bench_gpu.py [--cfgs cfg/yolov2-voc.cfg cfg/yolov2-tiny-voc.cfg]
        [--images 64] [--sub-batch 16] [--steps 5] [--warmup 2] [--size 416] [--limits cfg 0]
"""
from collections import Counter
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from darknet_py import _core  # noqa: E402


def variant(cfg_path, out_dir, ternary, limit):
    """A copy of the cfg with ternary=1 in every [convolutional] section (or
    none) and [net] workspace_size_limit_MB=limit (None: as it is)."""
    lines = []
    for line in open(cfg_path).read().splitlines():
        key = line.split("=")[0].strip()
        if key == "ternary" or (limit is not None and key == "workspace_size_limit_MB"):
            continue
        lines.append(line)
        if ternary and line.strip() in ("[convolutional]", "[conv]"):
            lines.append("ternary=1")
        if limit is not None and line.strip() == "[net]":
            lines.append(f"workspace_size_limit_MB={limit}")
    name = os.path.basename(cfg_path).replace(".cfg", f"-{'ternary' if ternary else 'float'}-{limit}.cfg")
    path = os.path.join(out_dir, name)
    open(path, "w").write("\n".join(lines) + "\n")
    return path


def bench_one(cfg, args, rng):
    net = _core.Network(cfg, args.sub_batch, 1)
    net.resize(args.sub_batch, args.size, args.size)
    net.set_train(True)
    net.set_device(args.gpu)
    images = rng.random((args.images, 3, args.size, args.size), dtype=np.float32)
    truth = np.zeros((args.images, 30, 5), np.float32)
    for b in range(args.images):
        for k in range(3):
            truth[b, k] = [rng.uniform(.2, .8), rng.uniform(.2, .8), rng.uniform(.05, .4),
                           rng.uniform(.05, .4), rng.integers(0, 20)]
    for _ in range(args.warmup):
        net.train_step(images, truth)
    net.layer_output(0)  # a device-to-host copy: waits for the queued work
    t0 = time.perf_counter()
    losses = [net.train_step(images, truth) for _ in range(args.steps)]
    net.layer_output(0)
    dt = (time.perf_counter() - t0) / args.steps
    plans = [l["cudnn"] for l in net.layers if l["cudnn"]]
    return {"cfg": os.path.basename(cfg), "cudnn": net.cudnn, "seconds_per_step": dt,
            "forward_algorithms": dict(Counter(p["forward"] for p in plans)),
            "workspace_mb": max((p["workspace"] for p in plans), default=0) / 2 ** 20,
            "images_per_second": args.images / dt,
            "loss_first": float(losses[0]), "loss_last": float(losses[-1])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfgs", nargs="+", default=[os.path.join(ROOT, "cfg", "yolov2-voc.cfg"),
                                                  os.path.join(ROOT, "cfg", "yolov2-tiny-voc.cfg")])
    ap.add_argument("--images", type=int, default=64, help="images per training step (Darknet's batch)")
    ap.add_argument("--sub-batch", type=int, default=16, help="images per forward (batch/subdivisions)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--gpu", type=int, default=0)
    ap.add_argument("--limits", nargs="+", default=["cfg"],
                    help="[net] workspace_size_limit_MB values to run ('cfg': the cfg's own)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    if args.images % args.sub_batch:
        ap.error("--images must be a multiple of --sub-batch")
    if not _core.cuda_compiled() or _core.cuda_device_count() <= args.gpu:
        print(f"no CUDA device {args.gpu} (CUDA build: {_core.cuda_compiled()}, devices: "
              f"{_core.cuda_device_count()}); build with DARKNET_GPU=1 on a GPU machine", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in args.cfgs:
            for limit in args.limits:
                lim = None if limit == "cfg" else float(limit)
                f = bench_one(variant(cfg, tmp, False, lim), args, rng)
                t = bench_one(variant(cfg, tmp, True, lim), args, rng)
                rows.append({"cfg": os.path.basename(cfg), "limit": limit, "float": f, "ternary": t,
                             "overhead": t["seconds_per_step"] / f["seconds_per_step"] - 1})
    print(f"\nGPU {args.gpu}, {args.size}x{args.size}, fp32, {args.images} images per step "
          f"({args.images // args.sub_batch} x {args.sub_batch}), {args.steps} timed steps after {args.warmup}, "
          f"convolutions on {'cuDNN' if rows[0]['float']['cudnn'] else 'im2col + GEMM'}\n")
    print("| cfg | workspace limit MB | float img/s | all-ternary img/s | ternary overhead | "
          "float forward algorithms | workspace MB |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for r in rows:
        f = r["float"]
        algos = ", ".join(f"{k} x{v}" for k, v in sorted(f["forward_algorithms"].items())) or "-"
        print(f"| {r['cfg']} | {r['limit']} | {f['images_per_second']:.1f} | "
              f"{r['ternary']['images_per_second']:.1f} | {100 * r['overhead']:+.1f}% | {algos} | "
              f"{f['workspace_mb']:.1f} |")
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
