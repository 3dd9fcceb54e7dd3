#!/usr/bin/env python3
"""Depthwise-separable networks (Yolo-Fastest): whole-network forward per
image, batch 1, in one run with the paths interleaved in each round:

  float        darknet_py, the direct depthwise kernel (kernels/cpu/depthwise.c)
  float im2col darknet_py with conv_algo=gemm: depthwise layers on the
               grouped implicit-im2col GEMM (the path before the kernel)
  int8         darknet_py, every conv ternary (per-filter alphas), int8 kernel
  int8 GEMM    the same with ternary_algo=packed: depthwise layers on the
               grouped int8 GEMM (before the depthwise int8 kernel)
  OpenCV       cv2.dnn.readNetFromDarknet on the same cfg and weights
  ORT fp32     ONNX Runtime on the project's ONNX export of the same model
  ORT int8     the same graph statically quantised by ONNX Runtime (QDQ,
               per-channel int8 weights, uint8 activations calibrated on
               8 random images)

plus the per-kind split of darknet_py's float and int8 forwards (first conv,
depthwise, pointwise, detector convs, other layers; Network.layers
forward_ms, the median over rounds), and on one thread each kind against
the machine's floor: the bytes its layers must move (float activations in
and out, weights) at the measured copy bandwidth of a DRAM-sized buffer,
and its multiply-adds at the measured one-thread sgemm rate (the practical
FMA peak); the floor is the larger of the two.

  python3 bench/bench_depthwise.py [CFG WEIGHTS ...] [--size 320] [--threads 1,2] [--rounds 30]

Default: ../shared/models/yolo-fastest's VOC and XL-COCO models (skipped
when missing). The ORT columns need `pip install onnxruntime onnx` (test
dependencies of the project); without them they are left empty.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
import darknet_py  # noqa: E402
from bench_forward import interleaved, sgemm_gflops  # noqa: E402
from darknet_py.cfgfile import read_cfg, write_cfg  # noqa: E402
from darknet_py.stages import conv_kinds, stage_sections  # noqa: E402

MODELS = os.path.join(os.path.dirname(ROOT), "shared", "models", "yolo-fastest")
DEFAULT = [(os.path.join(MODELS, c + ".cfg"), os.path.join(MODELS, c + ".weights"))
           for c in ("yolo-fastest-voc", "yolo-fastest-1.1-xl-coco")]


def with_options(fn, **options):
    def run():
        with darknet_py.option_context(**options):
            fn()
    return run


def ort_sessions(fcfg, weights, tmp, name, threads, x):
    """{threads: (fp32 session, int8 session)} or {} without onnxruntime."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    except ImportError:
        return {}
    f32 = darknet_py.export_onnx(fcfg, weights, os.path.join(tmp, name + ".onnx"))
    rng = np.random.default_rng(1)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.left = [{"input": rng.random(x.shape, dtype=np.float32)} for _ in range(8)]

        def get_next(self):
            return self.left.pop() if self.left else None

    i8 = os.path.join(tmp, name + "_int8.onnx")
    quantize_static(f32, i8, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    out = {}
    for t in threads:
        o = ort.SessionOptions()
        o.intra_op_num_threads = t
        o.inter_op_num_threads = 1
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no spinning into the next path's time
        out[t] = tuple(ort.InferenceSession(p, o, providers=["CPUExecutionProvider"]) for p in (f32, i8))
    return out


def copy_gbs(mb=64, reps=15):
    """Bytes read plus written per second by a NumPy copy of mb MiB (beyond the caches)."""
    a = np.ones(mb * 2**20 // 4, np.float32)
    b = np.empty_like(a)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        np.copyto(b, a)
        ts.append(time.perf_counter() - t)
    return 2 * a.nbytes / np.median(ts) / 1e9


def by_kind(net, kinds):
    """(layer, kind) for each layer: its conv kind, or "other"."""
    convs = iter(kinds)
    for l in net.layers:
        yield l, next(convs) if l["type"] == "convolutional" else "other"


def traffic(net, kinds):
    """{kind: (bytes, flops)} of one image: float activations in and out plus weights, and 2 x MACs."""
    out = {}
    for l, kind in by_kind(net, kinds):
        if kind != "other":
            b = 4 * (np.prod(l["input_shape"]) + np.prod(l["output_shape"]) + l["nparams"])
            m, f = out.get(kind, (0, 0))
            out[kind] = (m + b, f + l["bflops"] * 1e9)
    return out


def split(net, kinds):
    out = {}
    for l, kind in by_kind(net, kinds):
        out[kind] = out.get(kind, 0.0) + l["forward_ms"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="cfg weights pairs")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=30)
    a = ap.parse_args()
    import cv2
    import logging
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's advice on pre-processing
    models = list(zip(a.models[::2], a.models[1::2])) or [m for m in DEFAULT if os.path.exists(m[1])]
    threads = [int(t) for t in a.threads.split(",")]
    x = np.random.default_rng(0).random((1, 3, a.size, a.size), dtype=np.float32)
    tmp = tempfile.mkdtemp(prefix="bench_dw_")
    print(f"# forward, batch 1, {a.size}x{a.size}, median of {a.rounds} interleaved rounds; OpenCV {cv2.__version__}\n")
    peak = {t: sgemm_gflops(t) for t in threads}
    bw = copy_gbs()
    for t in threads:
        print(f"NumPy sgemm 1024^3, {t} thread(s): {peak[t]:.1f} GFLOPS")
    print(f"NumPy copy of 64 MiB: {bw:.1f} GB/s (read + write)")
    print("\n| network | threads | float ms | float im2col ms | int8 ms | int8 GEMM ms | OpenCV ms | ORT fp32 ms | "
          "ORT int8 ms | OpenCV / float | ORT fp32 / float | float / int8 | ORT int8 / int8 |\n|-|-|-|-|-|-|-|-|-|-|-|-|-|")
    splits, moved = [], {}
    for cfg, weights in models:
        name = os.path.splitext(os.path.basename(cfg))[0]
        secs = read_cfg(cfg)
        secs[0].set("width", a.size)
        secs[0].set("height", a.size)
        fcfg = os.path.join(tmp, name + ".cfg")
        write_cfg(secs, fcfg)
        kinds = conv_kinds(secs)
        tcfg = os.path.join(tmp, name + "_ternary.cfg")
        write_cfg(stage_sections(fcfg, range(len(kinds)), ternary_scale="filter"), tcfg)
        fnet = darknet_py.Network(fcfg, weights, batch=1)
        moved[name] = traffic(fnet, kinds)
        tnet = darknet_py.Network(tcfg, weights, batch=1)
        tnet.ternary_kernel = "int8"
        cvnet = cv2.dnn.readNetFromDarknet(fcfg, weights)
        cvnet.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        cvnet.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        outs = cvnet.getUnconnectedOutLayersNames()
        sessions = ort_sessions(fcfg, weights, tmp, name, threads, x)

        def run_cv():
            cvnet.setInput(x)
            cvnet.forward(outs)

        for t in threads:
            fnet._net.set_threads(t)
            tnet._net.set_threads(t)
            cv2.setNumThreads(t)
            fs, ts = [], []

            def run_float():
                fnet.forward(x)
                fs.append(split(fnet, kinds))

            def run_int8():
                tnet.forward(x)
                ts.append(split(tnet, kinds))

            paths = {"float": run_float, "im2col": with_options(lambda: fnet.forward(x), conv_algo="gemm"),
                     "int8": run_int8, "int8gemm": with_options(lambda: tnet.forward(x), ternary_algo="packed"),
                     "cv": run_cv}
            if t in sessions:
                for key, sess in zip(("ort32", "ort8"), sessions[t]):
                    paths[key] = (lambda sess: lambda: sess.run(None, {"input": x}))(sess)
            ms = {k: v * 1e3 for k, v in interleaved(paths, a.rounds).items()}
            o32, o8 = ms.get("ort32", float("nan")), ms.get("ort8", float("nan"))
            print(f"| {name} | {t} | {ms['float']:.2f} | {ms['im2col']:.2f} | {ms['int8']:.2f} | "
                  f"{ms['int8gemm']:.2f} | {ms['cv']:.2f} | {o32:.2f} | {o8:.2f} | {ms['cv'] / ms['float']:.2f}x | "
                  f"{o32 / ms['float']:.2f}x | {ms['float'] / ms['int8']:.2f}x | {o8 / ms['int8']:.2f}x |")
            for label, rows in (("float", fs), ("int8", ts)):
                keys = rows[0].keys()
                splits.append((name, t, label, {k: float(np.median([r[k] for r in rows])) for k in keys}))
    print("\nPer-kind split of darknet_py's forward (ms, median over rounds):\n")
    keys = ["first", "depthwise", "pointwise", "detector", "other"]
    print("| network | threads | path | " + " | ".join(keys) + " |\n|-|-|-|" + "-|" * len(keys))
    for name, t, label, d in splits:
        print(f"| {name} | {t} | {label} | " + " | ".join(f"{d.get(k, 0):.2f}" for k in keys) + " |")
    if 1 not in threads:
        return
    print(f"\nEach conv kind against the floor, one thread (bandwidth {bw:.1f} GB/s, sgemm {peak[1]:.1f} GFLOPS):\n")
    print("| network | kind | MB moved | MFLOP | floor ms | float ms | float GB/s | float GFLOPS | float / floor | "
          "int8 ms | int8 / floor |\n|-|-|-|-|-|-|-|-|-|-|-|")
    ms = {(name, label): d for name, t, label, d in splits if t == 1}
    for name, kinds_moved in moved.items():
        for kind, (b, f) in kinds_moved.items():
            floor = max(b / bw / 1e6, f / peak[1] / 1e6)
            fl, i8 = ms[name, "float"][kind], ms[name, "int8"][kind]
            print(f"| {name} | {kind} | {b / 1e6:.1f} | {f / 1e6:.0f} | {floor:.2f} | {fl:.2f} | {b / fl / 1e6:.1f} | "
                  f"{f / fl / 1e6:.1f} | {fl / floor:.1f}x | {i8:.2f} | {i8 / floor:.1f}x |")


if __name__ == "__main__":
    main()
