"""Packed ternary weights and the ternary inference kernels.

    import darknet_py as dn
    dn.ternary.pack("yolo-t.cfg", "yolo-t.weights", "yolo-t.tpk")   # ~1/16 of the size
    net = dn.Network("yolo-t.cfg", "yolo-t.tpk", ternary_kernel="int8")
    dn.ternary.compare("yolo-t.cfg", "yolo-t.tpk", ["dog.jpg"])     # int8 vs float path

The packed format (header, records, 5 trits per byte) is documented in
csrc/core/packed.c; `./darknet ternary pack|unpack|info` does the same from
the command line. Every ternary=1 conv layer's weights are stored as TWN
codes plus alpha, so a packed file unpacks to the ternarised .weights byte
for byte (the .weights that Network.save_weights writes for that cfg).
"""
import os

import numpy as np

from . import _core
from .network import Network
from .errors import DarknetValueError

KERNELS = ("off", "float", "int8")


def pack(cfg, weights, out, fold=False):
    """Write the packed ternary file `out` from cfg + weights (.weights or
    packed). Written atomically. fold=True: format version 2, for
    deployment: each ternary conv with batch norm stores its alphas and
    batch norm folded into a float16 scale and shift per filter (the same
    network up to float16 rounding, no longer unpacking byte for byte to the
    ternarised .weights); about 60% of the default size on small networks."""
    _core.ternary_pack(os.fspath(cfg), os.fspath(weights), os.fspath(out), bool(fold))


def unpack(cfg, packed, out):
    """Write the standard .weights file `out` of a packed file."""
    _core.ternary_unpack(os.fspath(cfg), os.fspath(packed), os.fspath(out))


def is_packed(path):
    """True when the file starts with the packed magic."""
    return _core.weights_is_packed(os.fspath(path))


def info(cfg, path):
    """One dict per layer of the file (.weights or packed): layer, type,
    ternary, params (floats in a .weights file), weights (ternary weights),
    zeros, zero_share, alphas (groups), alpha_min/mean/max, bytes (in this
    file), format ('packed' or 'weights')."""
    rows, packed = _core.ternary_stats(os.fspath(cfg), os.fspath(path))
    for r in rows:
        r["zero_share"] = r["zeros"] / r["weights"] if r["weights"] else 0.0
        r["format"] = "packed" if packed else "weights"
    return rows


def _detector_outputs(net):
    idx = [l["index"] for l in net.layers if l["type"] in ("region", "yolo", "detection")]
    if not idx:
        idx = [len(net.layers) - 1]
    return [net.layer_output(i) for i in idx]


def _iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_detections(ref, test, iou=0.5):
    """Greedy matching, most confident first: a test detection matches a
    reference one of the same class with IoU > iou, each used once.
    Returns the number of matched pairs."""
    used = [False] * len(test)
    matched = 0
    for d in sorted(ref, key=lambda d: -d.confidence):
        best, bi = iou, -1
        for j, t in enumerate(test):
            if not used[j] and t.class_id == d.class_id:
                v = _iou(d.box, t.box)
                if v > best:
                    best, bi = v, j
        if bi >= 0:
            used[bi] = True
            matched += 1
    return matched


def compare(cfg, weights, images, kernel="int8", baseline="off", thresh=0.25, nms=0.45, iou=0.5,
            threads=None):
    """Run the same network with the `baseline` and the `kernel` ternary
    kernels over images (paths or H x W x 3 uint8 arrays) and report:
    max_rel_diff, the largest |difference| of the detector layers' outputs
    relative to the largest |baseline output| (per image, then the max over
    images); and the detection agreement: pairs matched (same class, IoU >
    iou) / max(baseline detections, kernel detections), 1.0 when neither
    finds anything."""
    if isinstance(images, (str, os.PathLike, np.ndarray)):
        images = [images]
    if kernel not in KERNELS or baseline not in KERNELS:
        raise DarknetValueError(f"kernels: one of {KERNELS}")
    nets = {k: Network(cfg, weights, threads=threads, ternary_kernel=k) for k in (baseline, kernel)}
    per_image = []
    total_ref = total_test = total_matched = 0
    for im in images:
        dets, outs = {}, {}
        for k, net in nets.items():
            dets[k] = net.detect(im, thresh=thresh, nms=nms)
            outs[k] = _detector_outputs(net)
        rel = max(float(np.max(np.abs(a.astype(np.float64) - b))) / max(1e-12, float(np.max(np.abs(b))))
                  for a, b in zip(outs[kernel], outs[baseline]))
        m = match_detections(dets[baseline], dets[kernel], iou)
        nr, nt = len(dets[baseline]), len(dets[kernel])
        per_image.append({"image": im if isinstance(im, (str, os.PathLike)) else "<array>",
                          "rel_diff": rel, "baseline_detections": nr, "kernel_detections": nt,
                          "matched": m})
        total_ref += nr
        total_test += nt
        total_matched += m
    denom = max(total_ref, total_test)
    return {"kernel": kernel, "baseline": baseline, "images": len(per_image),
            "max_rel_diff": max((p["rel_diff"] for p in per_image), default=0.0),
            "baseline_detections": total_ref, "kernel_detections": total_test,
            "matched": total_matched, "agreement": total_matched / denom if denom else 1.0,
            "per_image": per_image}
