"""Post-training ternarisation probe: every conv layer of a detector made
ternary without training, layer by layer from the input side, with batch
norm re-estimated after each layer on the calibration images, then scored
on the .data file's valid list.

    python experiments/ptq_ternary_probe.py DATA OUT [--mode twn|gptq] [--images 96]

--mode twn: TWN's rounding (delta = 0.7 mean|W|, one alpha per filter).
--mode gptq: error compensation as GPTQ does it (Frantar et al. 2022,
arXiv 2210.17323), on the ternary grid {-alpha, 0, +alpha} of each filter's
TWN alpha: the weights of a filter are rounded one input column at a time,
and each rounding error is spread over the columns not yet rounded through
the inverse of the layer's input Gram matrix H = X X^T (im2col rows of the
calibration images as the partly ternarised network sees them; per channel
for depthwise layers). The result is written as the layers' weights, so a
cfg with ternary=1 and ternary_scale=filter in every conv reproduces it
exactly (TWN of {-a, 0, a} values is themselves); OUT/ptq.weights can then
start a training run (direct_ternary_probe.py --weights).

The model is read as AlexeyAB-format Yolo-Fastest by default (stretched input)."""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import darknet_py as dn  # noqa: E402
from darknet_py import _core  # noqa: E402
from darknet_py.cfgfile import read_cfg, write_cfg  # noqa: E402
from darknet_py.names import data_options  # noqa: E402
from darknet_py.stages import conv_indices, stage_sections  # noqa: E402


def twn(W):
    """Each row of W (R, d) ternarised as the network does it (the C core's TWN,
    one alpha per row): the values and the alphas (R,)."""
    t, alpha = _core.ternarize(np.ascontiguousarray(W, dtype=np.float32).ravel(), W.shape[0])
    return np.asarray(t, dtype=np.float64).reshape(W.shape), np.asarray(alpha, dtype=np.float64)


def gptq_ternary(W, H, alpha, damp=0.01):
    """W (G, R, d) rows sharing each of G Gram matrices H (G, d, d); alpha (G, R).
    Returns Q (G, R, d) on {-alpha, 0, +alpha}."""
    W = W.astype(np.float64).copy()
    H = H.astype(np.float64).copy()
    d = W.shape[2]
    i = np.arange(d)
    dead = H[:, i, i] <= 0  # an input that is always zero: its weights do not matter
    H[:, i, i] += dead
    W[np.broadcast_to(dead[:, None, :], W.shape)] = 0
    H[:, i, i] += damp * H[:, i, i].mean(1, keepdims=True)
    U = np.linalg.cholesky(np.linalg.inv(H)).transpose(0, 2, 1)  # H^-1 = U^T U, U upper
    Q = np.zeros_like(W)
    for j in range(d):
        w = W[:, :, j]
        q = alpha * np.sign(w) * (np.abs(w) > alpha / 2)
        err = (w - q) / U[:, j, j][:, None]
        W[:, :, j:] -= err[:, :, None] * U[:, None, j, j:]
        Q[:, :, j] = q
    return Q


def patches(X, k, s, p):
    """X (N, c, h, w) -> im2col rows per channel (c, k*k, N*ho*wo)."""
    N, c, h, w = X.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    xp = np.pad(X, ((0, 0), (0, 0), (p, p), (p, p)))
    P = np.stack([xp[:, :, dy:dy + s * ho:s, dx:dx + s * wo:s] for dy in range(k) for dx in range(k)], 0)
    return P.transpose(2, 0, 1, 3, 4).reshape(c, k * k, -1)


def gram(X, L):
    """(G, d, d) input Gram matrices of conv layer L: one for a dense conv, one per channel for a depthwise one."""
    c, k, s, p, g = L["input_shape"][0], L["size"], L["stride"], L["pad"], L["groups"]
    if g not in (1, c) or (g == c and L["filters"] != c):
        raise SystemExit(f"layer {L['index']}: groups={g} is neither dense nor depthwise")
    H = np.zeros((1, c * k * k, c * k * k)) if g == 1 else np.zeros((c, k * k, k * k))
    for b in range(0, X.shape[0], 8):
        P = patches(X[b:b + 8].astype(np.float64), k, s, p)
        if g == 1:
            P = P.reshape(c * k * k, -1)
            H[0] += P @ P.T
        else:
            H += np.einsum("ckn,cjn->ckj", P, P)
    return H


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--model-dir", default="../shared/models/yolo-fastest")
    ap.add_argument("--model", default="yolo-fastest-voc")
    ap.add_argument("--mode", choices=("twn", "gptq"), default="gptq")
    ap.add_argument("--images", type=int, default=96, help="calibration images (training list)")
    ap.add_argument("--bn-images", type=int, default=480, help="images of the final BN re-estimation (x96)")
    a = ap.parse_args()
    cfg = os.path.join(a.model_dir, a.model + ".cfg")
    os.makedirs(a.out, exist_ok=True)
    tcfg = os.path.join(a.out, a.model + "_ternary.cfg")
    write_cfg(stage_sections(cfg, range(len(conv_indices(read_cfg(cfg)))), ternary_scale="filter"), tcfg)
    train_list = data_options(a.data)["train"]
    paths = [p.strip() for p in open(train_list) if p.strip()]
    np.random.default_rng(0).shuffle(paths)
    net = dn.Network(cfg, os.path.join(a.model_dir, a.model + ".weights"), batch=a.images)
    _, _, h, w = net.input_shape
    load = lambda ps: np.concatenate([_core.letterbox(_core.load_image(p), w, h, net.letterbox) for p in ps])  # noqa: E731
    cal = load(paths[:a.images])
    for L in (L for L in net.layers if L["type"] == "convolutional"):
        i, view = L["index"], net.params(L["index"])["weights"]
        W = np.array(view, dtype=np.float64).reshape(L["filters"], -1)
        Q, alpha = twn(W)
        if a.mode == "gptq":
            net.forward(cal)
            H = gram(cal if i == 0 else net.layer_output(i - 1), L)
            G = H.shape[0]
            Q = gptq_ternary(W.reshape(G, -1, W.shape[1]), H, alpha.reshape(G, -1))
        view[...] = Q.reshape(view.shape).astype(np.float32)
        net._net.bn_recalibrate(cal)
    net.resize(w, h, batch=96)
    net._net.bn_recalibrate(load(paths[a.images:a.images + a.bn_images]))
    weights = os.path.join(a.out, "ptq.weights")
    net.save_weights(weights)
    r = dn.validate(a.data, tcfg, weights, progress=False)
    print(f"{a.mode}: mAP {100 * r.map:.2f} (ternary cfg {tcfg}, weights {weights})")


if __name__ == "__main__":
    main()
