"""The [yolo] layer in AlexeyAB's dialect (scale_x_y, new_coords, iou_loss,
the normalizers, ignore/class rule, objectness_smooth, label_smooth_eps,
iou_thresh and its averaging) and his NMS kinds, against a NumPy
transcription of his formulas written here from a reading of his source
(yolo_layer.c forward_yolo_layer / delta_yolo_box / delta_yolo_class,
box.c box_iou / box_giou / box_diou / box_ciou / box_diounms / dx_box_iou,
detector.c do_nms_sort / diounms_sort), independent of the C.

The network is [maxpool] size=1 stride=2 + [yolo], so the 8 x 6 grid is half
the 16 x 12 network input (a mix-up of the grid and the network size shows)
and the input gradient at [..., ::2, ::2] is the [yolo] delta; the delta the
network hands back is dL/d(input) = -(Darknet's delta). The loss references
take the layer's activated output o (checked on its own against the NumPy
forward) and return Darknet's delta (target - output convention)."""
import ctypes
import math
import os

import numpy as np
import pytest

import darknet_py as dn
from conftest import DARKNET_LIB, Box, Dets, c_detections

NET_W, NET_H = 16, 12          # network input
LW, LH = 8, 6                  # [yolo] grid
CLASSES = 3
E = 5 + CLASSES
ANCHORS = [1.5, 1.5, 3, 2, 2.5, 4.5, 5, 5, 8, 4, 10, 9]  # pixels of the 16 x 12 input
NUM = len(ANCHORS) // 2
ALL = list(range(NUM))
RTOL, ATOL = 1e-5, 1e-6
KINDS = ["iou", "giou", "diou", "ciou"]
IOU_KIND = {"mse": 0, "iou": 1, "giou": 2, "diou": 3, "ciou": 4}


# ================================================================ references
# All of the reference is float64 NumPy/Python written from the description
# of AlexeyAB's code; boxes are (x, y, w, h) centre/size.


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def logit(p):
    return float(np.log(p / (1 - p)))


def overlap(x1, w1, x2, w2):
    return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)


def box_iou(a, b):
    iw, ih = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if iw < 0 or ih < 0 else iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return 0.0 if inter == 0 or union == 0 else inter / union


def box_c(a, b):
    """The enclosing box as (left, right, top, bottom)."""
    return (min(a[0] - a[2] / 2, b[0] - b[2] / 2), max(a[0] + a[2] / 2, b[0] + b[2] / 2),
            min(a[1] - a[3] / 2, b[1] - b[3] / 2), max(a[1] + a[3] / 2, b[1] + b[3] / 2))


def box_iou_kind(a, b, kind):
    """box_iou / box_giou / box_diou (exponent .6) / box_ciou; b is the truth."""
    iou = box_iou(a, b)
    if kind in ("iou", "mse"):
        return iou
    l, r, t, bo = box_c(a, b)
    cw, ch = r - l, bo - t
    if kind == "giou":
        c = cw * ch
        if c == 0:
            return iou
        iw, ih = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
        inter = 0.0 if iw < 0 or ih < 0 else iw * ih
        u = a[2] * a[3] + b[2] * b[3] - inter
        return iou - (c - u) / c
    c2 = cw * cw + ch * ch
    if c2 == 0:
        return iou
    d2 = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
    if kind == "diou":
        return iou - (d2 / c2) ** 0.6
    v = 4 / math.pi ** 2 * (math.atan(b[2] / b[3]) - math.atan(a[2] / a[3])) ** 2
    alpha = v / (1 - iou + v + 0.000001)
    return iou - (d2 / c2 + alpha * v)


def box_diounms(a, b, beta):
    iou = box_iou(a, b)
    l, r, t, bo = box_c(a, b)
    c2 = (r - l) ** 2 + (bo - t) ** 2
    if c2 == 0:
        return iou
    d2 = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
    return iou - (d2 / c2) ** beta


def dx_box_iou(pred, truth, kind, info=None):
    """AlexeyAB's dx_box_iou: (dx, dy, dw, dh), the ascent step on the
    measure, in his form (not the exact gradient). info (a dict) gets
    'apart' (Iw <= 0 or Ih <= 0) and 'I' (the unclamped Iw*Ih)."""
    px, py, pw, ph = map(float, pred)
    gx, gy, gw, gh = map(float, truth)
    top, bot, left, right = py - ph / 2, py + ph / 2, px - pw / 2, px + pw / 2
    t, b, l, r = min(top, bot), max(top, bot), min(left, right), max(left, right)
    T, B, L, R = gy - gh / 2, gy + gh / 2, gx - gw / 2, gx + gw / 2
    X = (b - t) * (r - l)
    Xh = (B - T) * (R - L)
    Ih = min(b, B) - max(t, T)
    Iw = min(r, R) - max(l, L)
    I = Iw * Ih
    U = X + Xh - I
    S = (px - gx) ** 2 + (py - gy) ** 2
    Cgw = max(r, R) - min(l, L)
    Cgh = max(b, B) - min(t, T)
    Cg = Cgw * Cgh
    dX = {"t": -(r - l), "b": r - l, "l": -(b - t), "r": b - t}
    dI = {"t": -Iw if t > T else 0.0, "b": Iw if b < B else 0.0,
          "l": -Ih if l > L else 0.0, "r": Ih if r < R else 0.0}
    dU = {k: dX[k] - dI[k] for k in dX}
    dC = {"t": -Cgw if t < T else 0.0, "b": Cgw if b > B else 0.0,
          "l": -Cgh if l < L else 0.0, "r": Cgh if r > R else 0.0}
    p = {k: (U * dI[k] - I * dU[k]) / U ** 2 if U > 0 else 0.0 for k in dX}
    apart = Iw <= 0 or Ih <= 0
    if info is not None:
        info.update(apart=apart, I=I, Iw=Iw, Ih=Ih)
    if kind == "giou":
        g = {k: (Cg * dU[k] - U * dC[k]) / Cg ** 2 if Cg > 0 else 0.0 for k in dX}
        p = g if apart else {k: p[k] + g[k] for k in dX}
    dx, dy = p["l"] + p["r"], p["t"] + p["b"]
    dw, dh = p["r"] - p["l"], p["b"] - p["t"]
    if kind in ("diou", "ciou"):
        cl, cr, ct, cb = box_c(pred, truth)
        Cw, Ch = cr - cl, cb - ct
        C = Cw ** 2 + Ch ** 2
        dCt_dy, dCt_dh = float(t < T), -0.5 * (t < T)
        dCb_dy, dCb_dh = float(b > B), 0.5 * (b > B)
        dCl_dx, dCl_dw = float(l < L), -0.5 * (l < L)
        dCr_dx, dCr_dw = float(r > R), 0.5 * (r > R)
        dCw_dx, dCw_dw, dCw_dy, dCw_dh = dCr_dx - dCl_dx, dCr_dw - dCl_dw, 0.0, 0.0
        dCh_dy, dCh_dh, dCh_dx, dCh_dw = dCb_dy - dCt_dy, dCb_dh - dCt_dh, 0.0, 0.0
        ex = ey = ew = eh = 0.0
        if C > 0:
            ex = (2 * (gx - px) * C - (2 * Cw * dCw_dx + 2 * Ch * dCh_dx) * S) / C ** 2
            ey = (2 * (gy - py) * C - (2 * Cw * dCw_dy + 2 * Ch * dCh_dy) * S) / C ** 2
            ew = (2 * Cw * dCw_dw + 2 * Ch * dCh_dw) * S / C ** 2
            eh = (2 * Cw * dCw_dh + 2 * Ch * dCh_dh) * S / C ** 2
        if kind == "ciou":
            da = math.atan(gw / gh) - math.atan(pw / ph)
            v = 4 / math.pi ** 2 * da ** 2
            alpha = v / (1 - I / U + v + 1e-6)
            ew += alpha * 8 / math.pi ** 2 * da * ph
            eh += alpha * -8 / math.pi ** 2 * da * pw
        if apart:
            dx, dy, dw, dh = ex, ey, ew, eh
        else:
            dx, dy, dw, dh = dx + ex, dy + ey, dw + ew, dh + eh
    return np.array([dx, dy, dw, dh])


class P:
    """[yolo] options with AlexeyAB's defaults (as the reference reads them)."""

    def __init__(self, mask=ALL, **kw):
        self.mask = list(mask)
        self.anchors = list(ANCHORS)
        self.classes = CLASSES
        self.netw, self.neth = NET_W, NET_H
        self.ignore_thresh, self.truth_thresh = .5, 1.0
        self.iou_loss = "mse"
        self.iou_normalizer, self.obj_normalizer, self.cls_normalizer = .75, 1.0, 1.0
        self.iou_thresh, self.iou_thresh_kind = 1.0, "iou"
        self.max_delta = float("inf")
        self.label_smooth_eps = 0.0
        self.objectness_smooth = 0
        self.new_coords = 0
        self.scale_x_y = 1.0
        for k, v in kw.items():
            assert hasattr(self, k), k
            setattr(self, k, v)

    def cfg(self):
        """The [yolo] section (every AlexeyAB key written out)."""
        sec = dict(mask=",".join(map(str, self.mask)), anchors=",".join(map(str, self.anchors)),
                   classes=self.classes, num=len(self.anchors) // 2,
                   ignore_thresh=self.ignore_thresh, truth_thresh=self.truth_thresh,
                   iou_loss=self.iou_loss, iou_normalizer=self.iou_normalizer,
                   obj_normalizer=self.obj_normalizer, cls_normalizer=self.cls_normalizer,
                   iou_thresh=self.iou_thresh, iou_thresh_kind=self.iou_thresh_kind,
                   label_smooth_eps=self.label_smooth_eps, objectness_smooth=self.objectness_smooth,
                   new_coords=self.new_coords, scale_x_y=self.scale_x_y)
        if math.isfinite(self.max_delta):
            sec["max_delta"] = self.max_delta
        return sec


def forward_ref(z, n, s=1.0, new_coords=0):
    """forward_yolo_layer's activation on N x C x H x W."""
    y = z.reshape(z.shape[0], n, E, z.shape[2], z.shape[3]).astype(np.float64).copy()
    if not new_coords:
        y[:, :, 0:2] = sigmoid(y[:, :, 0:2])
        y[:, :, 4:] = sigmoid(y[:, :, 4:])
    y[:, :, 0:2] = s * y[:, :, 0:2] - 0.5 * (s - 1)
    return y.reshape(z.shape)


def get_yolo_box(p, v, a, i, j):
    """v: the entries of one cell and anchor (activated output)."""
    if p.new_coords:
        w = v[2] * v[2] * 4 * p.anchors[2 * a] / p.netw
        h = v[3] * v[3] * 4 * p.anchors[2 * a + 1] / p.neth
    else:
        w = np.exp(v[2]) * p.anchors[2 * a] / p.netw
        h = np.exp(v[3]) * p.anchors[2 * a + 1] / p.neth
    return ((i + v[0]) / LW, (j + v[1]) / LH, w, h)


def truth_rows(t):
    rows = []
    for r in np.asarray(t, np.float64):
        if r[0] == 0:
            break
        rows.append(r)
    return rows


def best_anchor(p, r):
    """The best anchor among all by shape IoU (strict >, first wins)."""
    best, best_n = 0.0, 0
    for a in range(len(p.anchors) // 2):
        v = box_iou((0, 0, p.anchors[2 * a] / p.netw, p.anchors[2 * a + 1] / p.neth), (0, 0, r[2], r[3]))
        if v > best:
            best, best_n = v, a
    return best_n


def delta_yolo_box(p, truth, v, d, a, i, j, stats=None):
    """Adds the box delta of truth to d (entries of one cell/anchor)."""
    pred = list(get_yolo_box(p, v, a, i, j))
    if p.iou_loss == "mse":
        scale = 2 - truth[2] * truth[3]
        tx, ty = truth[0] * LW - i, truth[1] * LH - j
        if p.new_coords:
            tw = math.sqrt(truth[2] * p.netw / (4 * p.anchors[2 * a]))
            th = math.sqrt(truth[3] * p.neth / (4 * p.anchors[2 * a + 1]))
        else:
            tw = math.log(truth[2] * p.netw / p.anchors[2 * a])
            th = math.log(truth[3] * p.neth / p.anchors[2 * a + 1])
        for e, t in enumerate((tx, ty, tw, th)):
            d[e] += scale * (t - v[e]) * p.iou_normalizer
        return
    if pred[2] == 0:
        pred[2] = 1
    if pred[3] == 0:
        pred[3] = 1
    info = {}
    g = dx_box_iou(pred, truth[:4], p.iou_loss, info)
    if stats is not None:
        stats.append(info)
    if not p.new_coords:
        g[2] *= math.exp(v[2])
        g[3] *= math.exp(v[3])
    g = g * p.iou_normalizer
    g[~np.isfinite(g)] = 0
    if math.isfinite(p.max_delta):
        g = np.clip(g, -p.max_delta, p.max_delta)
    d[0:4] += g


def delta_yolo_class(p, v, d, cls):
    """v, d: the entries of one cell/anchor; classes at 5.."""
    eps = p.label_smooth_eps
    if d[5 + cls] != 0:
        y = 1.0
        if eps > 0:
            y = y * (1 - eps) + 0.5 * eps
        d[5 + cls] = y - v[5 + cls]
        return
    for c in range(p.classes):
        y = float(c == cls)
        if eps > 0:
            y = y * (1 - eps) + 0.5 * eps
        d[5 + c] = y - v[5 + c]


def yolo_loss_ref(o, truth, p, stats=None):
    """AlexeyAB's forward_yolo_layer (training) on the activated output o
    (N x C x H x W); returns Darknet's delta, shape (N, n, E, LH, LW)."""
    n = len(p.mask)
    o = o.reshape(o.shape[0], n, E, LH, LW).astype(np.float64)
    d = np.zeros_like(o)
    on = p.obj_normalizer
    for b in range(o.shape[0]):
        rows = truth_rows(truth[b])
        # A. negatives, ignore, truth_thresh
        for j in range(LH):
            for i in range(LW):
                for k in range(n):
                    v, dd = o[b, k, :, j, i], d[b, k, :, j, i]
                    pred = get_yolo_box(p, v, p.mask[k], i, j)
                    match = any(v[5 + c] > .25 for c in range(p.classes))
                    best_match, best_iou, best_t = 0.0, 0.0, 0
                    for t, r in enumerate(rows):
                        if not 0 <= int(r[4]) < p.classes:
                            continue
                        iou = box_iou(pred, r[:4])
                        if iou > best_match and match:
                            best_match = iou
                        if iou > best_iou:
                            best_iou, best_t = iou, t
                    dd[4] = on * (0 - v[4])
                    if best_match > p.ignore_thresh:
                        if p.objectness_smooth:
                            dd[4] = max(dd[4], on * (best_match - v[4]))
                        else:
                            dd[4] = 0
                    if best_iou > p.truth_thresh:
                        r = rows[best_t]
                        cls = int(r[4])
                        dd[4] = on * ((best_iou ** 2 if p.objectness_smooth else 1) - v[4])
                        delta_yolo_class(p, v, dd, cls)
                        if p.objectness_smooth:
                            dd[5 + cls] = best_iou ** 2 - v[5 + cls]
                        delta_yolo_box(p, r, v, dd, p.mask[k], i, j)

        # B. positives
        def positive(k, r, i, j):
            v, dd = o[b, k, :, j, i], d[b, k, :, j, i]
            delta_yolo_box(p, r, v, dd, p.mask[k], i, j, stats)
            val = on * (1 - v[4])
            if not p.objectness_smooth or dd[4] == 0:
                dd[4] = val
            delta_yolo_class(p, v, dd, int(r[4]))

        for r in rows:
            best_n = best_anchor(p, r)
            i, j = int(r[0] * LW), int(r[1] * LH)
            if best_n in p.mask:
                positive(p.mask.index(best_n), r, i, j)
            if p.iou_thresh < 1:
                for k, a in enumerate(p.mask):
                    if a == best_n:
                        continue
                    shape_a = (0, 0, p.anchors[2 * a] / p.netw, p.anchors[2 * a + 1] / p.neth)
                    if box_iou_kind(shape_a, (0, 0, r[2], r[3]), p.iou_thresh_kind) > p.iou_thresh:
                        positive(k, r, i, j)
        # C. averaging
        if p.iou_thresh < 1:
            for k in range(n):
                for j in range(LH):
                    for i in range(LW):
                        dd = d[b, k, :, j, i]
                        if dd[4] != 0:
                            cnt = int(np.sum(dd[5:] > 0))
                            if cnt > 0:
                                dd[0:4] /= cnt
    return d


# ================================================================ C drivers


def make_net(make_cfg, p, batch=1, extra=None, raw=None):
    """[maxpool] size=1 stride=2 + [yolo] with p's options (raw: the [yolo]
    section as given, for the pjreddie dialect)."""
    sec = raw if raw is not None else p.cfg()
    if extra:
        sec.update(extra)
    c = len(p.mask) * E
    net = dn.Network(make_cfg({"width": NET_W, "height": NET_H, "channels": c},
                              ("maxpool", dict(size=1, stride=2)), ("yolo", sec)), batch=batch)
    net._net.set_train(True)
    return net


def run(net, z, truth):
    """Training forward with the [yolo] input z (N x C x LH x LW); returns
    (activated output o, cost, Darknet's delta), o and delta N x C x LH x LW."""
    n, c = z.shape[:2]
    x = np.full((n, c, NET_H, NET_W), 7.0, np.float32)  # off-grid pixels: never read
    x[:, :, ::2, ::2] = z
    net._net.set_truth(np.ascontiguousarray(truth, np.float32))
    o = np.array(net.forward(x), np.float64)
    cost = float(net._net.cost)
    g = np.array(net._net.backward(None), np.float64)
    off = g.copy()
    off[:, :, ::2, ::2] = 0
    assert not off.any()
    return o, cost, -g[:, :, ::2, ::2]


def shaped(a, p):
    return a.reshape(a.shape[0], len(p.mask), E, LH, LW)


def check(make_cfg, p, z, truth, batch=None, stats=None):
    """Runs the C and the reference; asserts delta and cost agree. Returns
    (o, delta) shaped (N, n, E, LH, LW)."""
    net = make_net(make_cfg, p, batch=batch or z.shape[0])
    o, cost, delta = run(net, z, truth)
    np.testing.assert_allclose(o, forward_ref(z, len(p.mask), p.scale_x_y, p.new_coords), rtol=RTOL, atol=ATOL)
    want = yolo_loss_ref(o, truth, p, stats)
    np.testing.assert_allclose(shaped(delta, p), want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(cost, np.sum(want ** 2), rtol=1e-5)
    return shaped(o, p), shaped(delta, p)


def aim(z, p, b, k, i, j, box, obj=None, cls=None):
    """Sets z at image b, mask slot k, cell (i, j) so the predicted box is box
    (the inverse of the activation and get_yolo_box); obj / cls: probabilities."""
    zz = z.reshape(z.shape[0], len(p.mask), E, LH, LW)
    a, s = p.mask[k], p.scale_x_y
    ox, oy = box[0] * LW - i, box[1] * LH - j          # the scaled outputs
    sx, sy = (ox + .5 * (s - 1)) / s, (oy + .5 * (s - 1)) / s
    if p.new_coords:
        vals = [sx, sy, math.sqrt(box[2] * p.netw / (4 * p.anchors[2 * a])),
                math.sqrt(box[3] * p.neth / (4 * p.anchors[2 * a + 1]))]
    else:
        assert 0 < sx < 1 and 0 < sy < 1
        vals = [logit(sx), logit(sy), math.log(box[2] * p.netw / p.anchors[2 * a]),
                math.log(box[3] * p.neth / p.anchors[2 * a + 1])]
    zz[b, k, 0:4, j, i] = vals
    prob = (lambda q: q) if p.new_coords else logit
    if obj is not None:
        zz[b, k, 4, j, i] = prob(obj)
    if cls is not None:
        zz[b, k, 5:, j, i] = [prob(c) for c in cls]


def random_z(rng, p, batch):
    c = len(p.mask) * E
    z = rng.normal(0, 1, (batch, c, LH, LW))
    zz = z.reshape(batch, len(p.mask), E, LH, LW)
    zz[:, :, 2:4] *= .5
    if p.new_coords:  # his new_coords cfgs end the conv in a logistic
        z = sigmoid(z)
    return z.astype(np.float32)


def random_truth(rng, batch, n):
    t = np.zeros((batch, n + 1, 5), np.float32)
    for b in range(batch):
        t[b, :n, 0:2] = rng.uniform(.05, .95, (n, 2))
        t[b, :n, 2:4] = rng.uniform(.05, .7, (n, 2))
        t[b, :n, 4] = rng.integers(0, CLASSES, n)
    return t


def random_case(rng, p, batch=2, n=4, near=True):
    """Random input and truths; with near, a second anchor at each truth's
    cell predicts the truth closely (so ignore_thresh decides there)."""
    z = random_z(rng, p, batch)
    truth = random_truth(rng, batch, n)
    if near:
        for b in range(batch):
            for r in truth_rows(truth[b]):
                i, j = int(r[0] * LW), int(r[1] * LH)
                ks = [k for k, a in enumerate(p.mask) if a != best_anchor(p, r)]
                if not ks:
                    continue
                k = ks[int(rng.integers(len(ks)))]
                x = float(np.clip(r[0] + rng.normal(0, .01), (i + .05) / LW, (i + .95) / LW))
                y = float(np.clip(r[1] + rng.normal(0, .01), (j + .05) / LH, (j + .95) / LH))
                aim(z, p, b, k, i, j, (x, y, r[2] * rng.uniform(.9, 1.1), r[3] * rng.uniform(.9, 1.1)),
                    cls=rng.uniform(.05, .6, CLASSES))
    return z, truth


# ================================================================ 1. forward


@pytest.mark.parametrize("s,new_coords", [(1.0, 0), (1.2, 0), (2.0, 0), (1.0, 1), (1.05, 1)])
def test_forward_scale_x_y_and_new_coords(make_cfg, rng, s, new_coords):
    p = P(mask=[1, 4], scale_x_y=s, new_coords=new_coords)
    net = dn.Network(make_cfg({"width": LW, "height": LH, "channels": 2 * E}, ("yolo", p.cfg())), batch=2)
    z = rng.normal(0, 2, (2, 2 * E, LH, LW)).astype(np.float32)
    y = np.array(net.forward(z), np.float64)
    want = forward_ref(z, 2, s, new_coords)
    np.testing.assert_allclose(y, want, rtol=RTOL, atol=ATOL)
    yy, zz = shaped(y, p), shaped(z.astype(np.float64), p)
    np.testing.assert_array_equal(yy[:, :, 2:4], zz[:, :, 2:4])      # w, h raw
    if new_coords:
        np.testing.assert_array_equal(yy[:, :, 4:], zz[:, :, 4:])    # no logistic at all
        np.testing.assert_allclose(yy[:, :, 0:2], s * zz[:, :, 0:2] - (s - 1) / 2, rtol=RTOL, atol=ATOL)
    else:
        lo, hi = -(s - 1) / 2, 1 + (s - 1) / 2
        assert yy[:, :, 0:2].min() >= lo - 1e-6 and yy[:, :, 0:2].max() <= hi + 1e-6
        if s > 1:
            assert yy[:, :, 0:2].min() < 0 or yy[:, :, 0:2].max() > 1   # scaled beyond [0, 1]


# ================================================================ 2. boxes


@pytest.fixture(scope="module")
def lib():
    if not os.path.exists(DARKNET_LIB):
        pytest.skip("libdarknet.so is not built")
    lib = ctypes.CDLL(DARKNET_LIB)
    lib.dn_box_overlap_step.argtypes = [Box, Box, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.dn_box_overlap_step.restype = None
    lib.dn_box_overlap.argtypes = [Box, Box, ctypes.c_int]
    lib.dn_box_overlap.restype = ctypes.c_float
    lib.dn_box_diou_nms.argtypes = [Box, Box, ctypes.c_float]
    lib.dn_box_diou_nms.restype = ctypes.c_float
    lib.dn_nms.argtypes = [ctypes.POINTER(Dets), ctypes.c_float, ctypes.c_int, ctypes.c_float]
    lib.dn_nms.restype = ctypes.c_int
    return lib


def f32(box):
    return tuple(float(np.float32(v)) for v in box)


def c_step(lib, pred, truth, kind):
    out = (ctypes.c_float * 4)()
    lib.dn_box_overlap_step(Box(*pred), Box(*truth), IOU_KIND[kind], out)
    return np.array(out[:], np.float64)


HAND_BOXES = {  # (pred, truth)
    "overlapping": ((0.33, 0.38, 0.25, 0.20), (0.30, 0.40, 0.20, 0.25)),
    "disjoint_x": ((0.5125, 0.25, 0.04, 0.05), (0.62, 0.20, 0.05, 0.06)),
    "disjoint_xy": ((0.405, 0.505, 0.03, 0.03), (0.45, 0.55, 0.04, 0.04)),
    "nested_pred_inside": ((0.72, 0.68, 0.12, 0.15), (0.70, 0.70, 0.30, 0.35)),
    "nested_truth_inside": ((0.50, 0.52, 0.40, 0.30), (0.55, 0.50, 0.10, 0.12)),
    "same_centre": ((0.15, 0.80, 0.20, 0.12), (0.15, 0.80, 0.10, 0.30)),
    "identical": ((0.40, 0.40, 0.20, 0.30), (0.40, 0.40, 0.20, 0.30)),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", sorted(HAND_BOXES))
def test_box_step_hand_made(lib, kind, case):
    pred, truth = map(f32, HAND_BOXES[case])
    info = {}
    want = dx_box_iou(pred, truth, kind, info)
    assert info["apart"] == case.startswith("disjoint")
    if case == "disjoint_xy":
        assert info["Iw"] < 0 and info["Ih"] < 0 and info["I"] > 0  # unclamped product
    np.testing.assert_allclose(c_step(lib, pred, truth, kind), want, rtol=RTOL, atol=ATOL)
    if case == "identical":
        # his strict edge tests give dI = 0 at equal edges: no centre step,
        # w and h pushed down for iou/diou/ciou (dU = dX), 0 for giou
        np.testing.assert_allclose(want[0:2], 0, atol=1e-12)
        assert (np.all(want[2:] == 0) if kind == "giou" else np.all(want[2:] < 0))


@pytest.mark.parametrize("kind", KINDS)
def test_box_step_random(lib, rng, kind):
    for _ in range(400):
        t = f32((*rng.uniform(.2, .8, 2), *rng.uniform(.02, .5, 2)))
        pr = f32((t[0] + rng.normal(0, .15), t[1] + rng.normal(0, .15), *rng.uniform(.02, .5, 2)))
        want = dx_box_iou(pr, t, kind)
        # float32 cancellation (dx = dl + dr): absolute error at the scale of the step
        np.testing.assert_allclose(c_step(lib, pr, t, kind), want, rtol=RTOL, atol=RTOL * np.abs(want).max(),
                                   err_msg=f"{kind} pred={pr} truth={t}")


@pytest.mark.parametrize("kind", KINDS)
def test_box_measures_random(lib, rng, kind):
    """box_iou_kind (iou_thresh_kind) and box_diounms (NMS) values."""
    for _ in range(300):
        a = f32((*rng.uniform(.2, .8, 2), *rng.uniform(.02, .5, 2)))
        b = f32((a[0] + rng.normal(0, .15), a[1] + rng.normal(0, .15), *rng.uniform(.02, .5, 2)))
        assert lib.dn_box_overlap(Box(*a), Box(*b), IOU_KIND[kind]) == pytest.approx(box_iou_kind(a, b, kind), rel=1e-5, abs=1e-6)
        beta = float(rng.uniform(.3, 2))
        assert lib.dn_box_diou_nms(Box(*a), Box(*b), beta) == pytest.approx(box_diounms(a, b, beta), rel=1e-5, abs=1e-6)


def hand_layer_case(p):
    """One image, the hand-made pairs of HAND_BOXES (except nested_truth_inside
    and identical), each pred placed at its truth's best anchor and cell."""
    z = np.zeros((1, len(p.mask) * E, LH, LW), np.float32)
    if p.new_coords:
        z[:] = .3
    names = ["overlapping", "disjoint_x", "disjoint_xy", "nested_pred_inside", "same_centre"]
    truth = np.zeros((1, len(names) + 1, 5), np.float32)
    for t, name in enumerate(names):
        pred, tb = HAND_BOXES[name]
        truth[0, t] = [*tb, t % CLASSES]
        r = truth[0, t].astype(np.float64)
        i, j = int(r[0] * LW), int(r[1] * LH)
        aim(z, p, 0, p.mask.index(best_anchor(p, r)), i, j, pred, obj=.4, cls=[.2, .3, .1])
    return z, truth


@pytest.mark.parametrize("new_coords", [0, 1])
@pytest.mark.parametrize("kind", KINDS)
def test_box_delta_hand_made_layer(make_cfg, kind, new_coords):
    p = P(iou_loss=kind, iou_normalizer=.4, new_coords=new_coords)
    z, truth = hand_layer_case(p)
    stats = []
    o, d = check(make_cfg, p, z, truth, stats=stats)
    assert [s["apart"] for s in stats] == [False, True, True, False, False]
    # the box delta of the overlapping pair by hand: .4 * step * (exp(t_w), exp(t_h))
    r = truth[0, 0].astype(np.float64)
    k, i, j = p.mask.index(best_anchor(p, r)), int(r[0] * LW), int(r[1] * LH)
    v = o[0, k, :, j, i]
    step = dx_box_iou(get_yolo_box(p, v, p.mask[k], i, j), r[:4], kind)
    if not new_coords:
        step[2:] *= np.exp(v[2:4])
    np.testing.assert_allclose(d[0, k, 0:4, j, i], .4 * step, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("new_coords", [0, 1])
@pytest.mark.parametrize("kind", ["mse"] + KINDS)
def test_box_delta_random(make_cfg, rng, kind, new_coords):
    p = P(iou_loss=kind, iou_normalizer=.4, new_coords=new_coords, scale_x_y=1.1, ignore_thresh=.4)
    z, truth = random_case(rng, p)
    o, d = check(make_cfg, p, z, truth)
    # (his iou step has dx = 0 where one box spans the other in x)
    assert np.count_nonzero(d[:, :, 0:4]) >= 2 * 6


def test_mse_targets_new_coords_by_hand(make_cfg):
    """new_coords=1 mse: tw = sqrt(w*net_w/(4 a_w)), times (2 - w*h) and iou_normalizer."""
    p = P(iou_loss="mse", iou_normalizer=.4, new_coords=1)
    z = np.full((1, NUM * E, LH, LW), .3, np.float32)
    truth = np.zeros((1, 2, 5), np.float32)
    truth[0, 0] = [.55, .45, .3, .2, 1]
    o, d = check(make_cfg, p, z, truth)
    r = truth[0, 0].astype(np.float64)
    a = best_anchor(p, r)
    s = 2 - r[2] * r[3]
    want = [s * .4 * (r[0] * LW - 4 - .3), s * .4 * (r[1] * LH - 2 - .3),
            s * .4 * (math.sqrt(r[2] * NET_W / (4 * ANCHORS[2 * a])) - .3),
            s * .4 * (math.sqrt(r[3] * NET_H / (4 * ANCHORS[2 * a + 1])) - .3)]
    np.testing.assert_allclose(d[0, a, 0:4, 2, 4], want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", KINDS)
def test_box_delta_max_delta_clip(make_cfg, rng, kind):
    p = P(iou_loss=kind, iou_normalizer=.4, max_delta=.5)
    z, truth = random_case(rng, p)
    o, d = check(make_cfg, p, z, truth)
    box = np.abs(d[:, :, 0:4])
    assert np.sum(np.isclose(box, .5, rtol=0, atol=1e-7)) >= 4   # some clipped
    assert np.sum((box > 0) & (box < .49)) >= 4                  # some not


def test_mse_has_no_max_delta_clip(make_cfg, rng):
    p = P(iou_loss="mse", iou_normalizer=2.0, max_delta=.05)
    z, truth = random_case(rng, p)
    o, d = check(make_cfg, p, z, truth)
    assert np.abs(d[:, :, 0:4]).max() > .05


# ================================================================ 3. objectness


def test_obj_normalizer(make_cfg, rng):
    p = P(iou_loss="ciou", obj_normalizer=.7, ignore_thresh=.4)
    z, truth = random_case(rng, p)
    o, d = check(make_cfg, p, z, truth)
    pos = np.any(d[:, :, 5:] != 0, axis=2)
    ign = (d[:, :, 4] == 0)
    assert pos.sum() >= 6 and ign.sum() >= 1
    neg = ~pos & ~ign
    np.testing.assert_allclose(d[:, :, 4][neg], -.7 * o[:, :, 4][neg], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(d[:, :, 4][pos], .7 * (1 - o[:, :, 4][pos]), rtol=RTOL, atol=ATOL)


def ignore_case(p):
    """Image 0 and 1: truth class 2 at cell (2, 2); mask slot 0 (not the
    truth's best anchor) predicts it closely. Image 0: its class
    probabilities all < .25; image 1: class 0 (not the truth's) at .6."""
    z = np.zeros((2, len(p.mask) * E, LH, LW), np.float32)
    truth = np.zeros((2, 2, 5), np.float32)
    truth[:, 0] = [.30, .40, .20, .25, 2]
    r = truth[0, 0].astype(np.float64)
    assert best_anchor(p, r) != p.mask[0]
    box = (.305, .397, .21, .24)
    aim(z, p, 0, 0, 2, 2, box, obj=.3, cls=[.2, .24, .1])
    aim(z, p, 1, 0, 2, 2, box, obj=.3, cls=[.6, .1, .1])
    return z, truth


def test_ignore_thresh_class_rule(make_cfg):
    """The raw class probability decides (image 1: class .6 > .25 while
    obj*class = .18 is not), and not the truth's class."""
    p = P(mask=[0, 1, 2, 3], iou_loss="giou", obj_normalizer=.9)
    z, truth = ignore_case(p)
    o, d = check(make_cfg, p, z, truth)
    pred = get_yolo_box(p, o[0, 0, :, 2, 2], p.mask[0], 2, 2)
    assert box_iou(pred, truth[0, 0, :4]) > .8
    assert d[0, 0, 4, 2, 2] == pytest.approx(-.9 * o[0, 0, 4, 2, 2], rel=RTOL)  # all classes < .25: not ignored
    assert d[1, 0, 4, 2, 2] == 0                                                # class 0 > .25: ignored


def test_ignore_without_class_rule_in_pjreddie_dialect(make_cfg):
    """No AlexeyAB key: pjreddie's rule ignores whatever the classes say."""
    p = P(mask=[0, 1, 2, 3])
    z, truth = ignore_case(p)
    raw = {k: v for k, v in p.cfg().items() if k in ("mask", "anchors", "classes", "num", "ignore_thresh", "truth_thresh")}
    net = make_net(make_cfg, p, batch=2, raw=raw)
    o, cost, d = run(net, z, truth)
    d = shaped(d, p)
    assert d[0, 0, 4, 2, 2] == 0 and d[1, 0, 4, 2, 2] == 0


def test_objectness_smooth(make_cfg):
    """Max rule where ignored; a positive's objectness is written only where
    the delta is still 0 (prediction p_obj = 0 not near any truth)."""
    p = P(mask=[0, 1, 2, 3, 4, 5], iou_loss="diou", obj_normalizer=.8, objectness_smooth=1)
    z, truth = ignore_case(p)
    z, truth = z[1:].copy(), truth[1:].copy()   # mask slot 0 is ignored (class 0 > .25)
    truth = np.concatenate([truth, np.zeros((1, 1, 5), np.float32)], axis=1)
    truth[0, 1] = [.81, .75, .5, .6, 1]     # a second truth; its slot: p_obj = 0, box far off
    r0, r1 = truth[0, 0].astype(np.float64), truth[0, 1].astype(np.float64)
    k0, k1 = best_anchor(p, r0), best_anchor(p, r1)
    zz = shaped(z, p)
    aim(z, p, 0, k0, 2, 2, (.26, .36, .03, .03), obj=.7, cls=[.1, .1, .1])  # first truth's positive slot
    aim(z, p, 0, k1, 6, 4, (.76, .69, .02, .02), cls=[.1, .1, .1])
    zz[0, k1, 4, 4, 6] = -200.0                     # sigmoid -> 0 exactly
    o, d = check(make_cfg, p, z, truth)
    assert o[0, k1, 4, 4, 6] == 0
    pred = get_yolo_box(p, o[0, 0, :, 2, 2], p.mask[0], 2, 2)
    iou = box_iou(pred, r0[:4])
    assert iou > .5
    assert d[0, 0, 4, 2, 2] == pytest.approx(.8 * (iou - o[0, 0, 4, 2, 2]), rel=RTOL)   # max rule
    # positive not written over a nonzero delta (it keeps -obj_norm * p)
    assert d[0, k0, 4, 2, 2] == pytest.approx(-.8 * o[0, k0, 4, 2, 2], rel=RTOL)
    assert np.any(d[0, k0, 5:, 2, 2] > 0) and np.all(d[0, k0, 0:4, 2, 2] != 0)
    assert d[0, k1, 4, 4, 6] == pytest.approx(.8)                                      # written where 0


def test_objectness_smooth_random(make_cfg, rng):
    p = P(iou_loss="diou", obj_normalizer=.8, objectness_smooth=1, ignore_thresh=.4, scale_x_y=1.1)
    z, truth = random_case(rng, p)
    o, d = check(make_cfg, p, z, truth)
    neg = -.8 * o[:, :, 4]
    assert np.sum(~np.isclose(d[:, :, 4], neg, rtol=RTOL, atol=ATOL)) >= 2   # the max rule somewhere


def test_iou_normalizer_default_is_his(make_cfg, rng):
    """A section with one AlexeyAB key (iou_loss) trains with his default
    iou_normalizer = .75."""
    p = P(iou_loss="mse")
    z, truth = random_case(rng, p)
    raw = {k: v for k, v in p.cfg().items() if k in ("mask", "anchors", "classes", "num", "ignore_thresh", "truth_thresh", "iou_loss")}
    o, cost, d = run(make_net(make_cfg, p, batch=2, raw=raw), z, truth)
    np.testing.assert_allclose(shaped(d, p), yolo_loss_ref(o, truth, p), rtol=RTOL, atol=ATOL)
    assert p.iou_normalizer == .75


def truth_thresh_case(p, cls=(.6, .1, .2)):
    z = np.zeros((1, len(p.mask) * E, LH, LW), np.float32)
    truth = np.zeros((1, 2, 5), np.float32)
    truth[0, 0] = [.30, .40, .20, .25, 2]
    aim(z, p, 0, 0, 2, 2, (.305, .397, .21, .24), obj=.3, cls=cls)
    return z, truth


@pytest.mark.parametrize("cls", [(.6, .1, .2), (.1, .1, .2)])
def test_truth_thresh(make_cfg, cls):
    """best IoU > truth_thresh: a positive there, whatever the class
    probabilities (the .25 class rule is for ignore_thresh only)."""
    p = P(mask=[0, 1, 2, 3], iou_loss="ciou", obj_normalizer=.9, ignore_thresh=.3, truth_thresh=.6)
    z, truth = truth_thresh_case(p, cls)
    o, d = check(make_cfg, p, z, truth)
    assert d[0, 0, 4, 2, 2] == pytest.approx(.9 * (1 - o[0, 0, 4, 2, 2]), rel=RTOL)
    assert np.all(d[0, 0, 0:4, 2, 2] != 0)


def test_truth_thresh_objectness_smooth(make_cfg):
    """AlexeyAB's truth_thresh branch with objectness_smooth: objectness
    obj_norm*(iou^2 - p) written unconditionally, true class iou^2 - p."""
    p = P(mask=[0, 1, 2, 3], iou_loss="ciou", obj_normalizer=.9, ignore_thresh=.3, truth_thresh=.6,
          objectness_smooth=1)
    z, truth = truth_thresh_case(p)
    o, d = check(make_cfg, p, z, truth)
    iou = box_iou(get_yolo_box(p, o[0, 0, :, 2, 2], p.mask[0], 2, 2), truth[0, 0, :4])
    assert d[0, 0, 4, 2, 2] == pytest.approx(.9 * (iou ** 2 - o[0, 0, 4, 2, 2]), rel=RTOL)
    assert d[0, 0, 7, 2, 2] == pytest.approx(iou ** 2 - o[0, 0, 7, 2, 2], rel=RTOL)


# ================================================================ 4. classes


def test_label_smooth_eps(make_cfg, rng):
    """Targets 1 - eps/2 and eps/2 at the positives."""
    p = P(iou_loss="iou", label_smooth_eps=.2)
    z, truth = random_case(rng, p)
    o, d = check(make_cfg, p, z, truth)
    seen = {}
    for b in range(2):
        for r in truth_rows(truth[b]):
            key = (b, best_anchor(p, r), int(r[1] * LH), int(r[0] * LW))
            seen[key] = seen.get(key, []) + [int(r[4])]
    assert len(seen) >= 6
    for (b, k, j, i), cls in seen.items():
        y = np.full(CLASSES, .1)
        y[cls] = .9
        if len(cls) == 1:
            np.testing.assert_allclose(d[b, k, 5:, j, i], y - o[b, k, 5:, j, i], rtol=RTOL, atol=ATOL)


def two_truths_one_cell(p, classes=(0, 1), z_cls=None):
    """Two truths in cell (2, 2) with the same best anchor, classes given."""
    z = np.zeros((1, len(p.mask) * E, LH, LW), np.float32)
    truth = np.zeros((1, 3, 5), np.float32)
    truth[0, 0] = [.30, .40, .20, .25, classes[0]]
    truth[0, 1] = [.32, .42, .21, .23, classes[1]]
    rows = truth_rows(truth[0])
    assert best_anchor(p, rows[0]) == best_anchor(p, rows[1])
    k = p.mask.index(best_anchor(p, rows[0]))
    zz = shaped(z, p)
    zz[0, k, 0:5, 2, 2] = [.3, -.2, .1, -.1, .5]
    if z_cls is not None:
        zz[0, k, 5:, 2, 2] = z_cls
    return z, truth, k


def test_class_already_set_rule(make_cfg):
    """Truth 1 (class 0), then truth 2 (class 1) on the same cell/anchor.
    p(class 1) = 0, so after truth 1 the class-1 delta is 0: AlexeyAB's rule
    (tests the truth's own class entry) resets all classes for truth 2:
    class 0 goes back to 0 - p0. pjreddie's (tests the first class entry)
    would set class 1 only."""
    p = P(iou_loss="mse")
    z, truth, k = two_truths_one_cell(p, z_cls=[.4, -200, .3])
    o, d = check(make_cfg, p, z, truth)
    v = o[0, k, 5:, 2, 2]
    assert v[1] == 0
    np.testing.assert_allclose(d[0, k, 5:, 2, 2], [-v[0], 1, -v[2]], rtol=RTOL, atol=ATOL)
    # the same in the pjreddie dialect keeps class 0 wanted
    raw = {kk: vv for kk, vv in p.cfg().items() if kk in ("mask", "anchors", "classes", "num", "ignore_thresh", "truth_thresh")}
    _, _, dp = run(make_net(make_cfg, p, raw=raw), z, truth)
    np.testing.assert_allclose(shaped(dp, p)[0, k, 5:, 2, 2], [1 - v[0], 1, -v[2]], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("eps", [0, .2])
def test_class_already_set_both_wanted(make_cfg, eps):
    p = P(iou_loss="giou", label_smooth_eps=eps)
    z, truth, k = two_truths_one_cell(p, z_cls=[.4, -.6, .3])
    o, d = check(make_cfg, p, z, truth)
    v = o[0, k, 5:, 2, 2]
    np.testing.assert_allclose(d[0, k, 5:, 2, 2], [1 - eps / 2 - v[0], 1 - eps / 2 - v[1], eps / 2 - v[2]],
                               rtol=RTOL, atol=ATOL)


def test_cls_normalizer_has_no_effect(make_cfg, rng):
    z, truth = random_case(rng, P())
    out = []
    for cn in (1.0, 5.0):
        net = make_net(make_cfg, P(iou_loss="ciou", cls_normalizer=cn, label_smooth_eps=.1), batch=2)
        out.append(run(net, z, truth))
    np.testing.assert_array_equal(out[0][2], out[1][2])
    assert out[0][1] == out[1][1]


# ================================================================ 5. iou_thresh


@pytest.mark.parametrize("kind", KINDS)
def test_iou_thresh_extra_anchors(make_cfg, rng, kind):
    p = P(iou_loss="ciou", iou_thresh=.3, iou_thresh_kind=kind, iou_normalizer=.5)
    z, truth = random_case(rng, p, near=False)
    truth[0] = 0
    truth[0, 0] = [.40, .55, .30, .35, 1]   # best anchor 3 (5 x 5); 2 and 4 also close
    truth[0, 1] = [.85, .15, .12, .1, 0]
    o, d = check(make_cfg, p, z, truth)
    r = truth[0, 0].astype(np.float64)
    best = best_anchor(p, r)
    extra = [a for a in ALL if a != best and box_iou_kind(
        (0, 0, ANCHORS[2 * a] / NET_W, ANCHORS[2 * a + 1] / NET_H), (0, 0, r[2], r[3]), kind) > .3]
    assert extra and len(extra) < NUM - 1
    i, j = int(r[0] * LW), int(r[1] * LH)
    for a in ALL:
        positive = np.any(d[0, a, 5:, j, i] > 0)
        assert positive == (a == best or a in extra), (a, best, extra)


def test_iou_thresh_when_best_anchor_is_elsewhere(make_cfg, rng):
    """The best anchor is in another layer's mask: the extra anchors of this
    mask still get the positive."""
    p = P(mask=[0, 1, 2], iou_loss="diou", iou_thresh=.2)
    z = random_z(rng, p, 1)
    truth = np.zeros((1, 2, 5), np.float32)
    truth[0, 0] = [.40, .55, .25, .30, 2]
    r = truth[0, 0].astype(np.float64)
    assert best_anchor(p, r) not in p.mask
    o, d = check(make_cfg, p, z, truth)
    assert np.any(d[0, :, 5:, 3, 3] > 0)


@pytest.mark.parametrize("kind", ["mse", "ciou"])
def test_averaging_two_truths_one_cell(make_cfg, kind):
    """iou_thresh < 1: the accumulated box deltas of a cell/anchor are
    divided by its count of positive class deltas (2 here)."""
    p = P(iou_loss=kind, iou_thresh=.99, iou_normalizer=.6)
    z, truth, k = two_truths_one_cell(p)
    o, d = check(make_cfg, p, z, truth)
    assert np.sum(d[0, k, 5:, 2, 2] > 0) == 2
    # the same without averaging (iou_thresh=1): the sum of the two deltas
    p1 = P(iou_loss=kind, iou_thresh=1, iou_normalizer=.6)
    o1, d1 = check(make_cfg, p1, z, truth)
    np.testing.assert_allclose(d[0, k, 0:4, 2, 2], d1[0, k, 0:4, 2, 2] / 2, rtol=RTOL, atol=ATOL)
    sep = np.zeros(4)
    for r in truth_rows(truth[0]):
        dd = np.zeros(E)
        delta_yolo_box(p1, r, o1[0, k, :, 2, 2], dd, p.mask[k], 2, 2)
        sep += dd[0:4]
    np.testing.assert_allclose(d1[0, k, 0:4, 2, 2], sep, rtol=RTOL, atol=ATOL)


def test_averaging_counts_smoothed_off_classes(make_cfg):
    """With label_smooth_eps the off-class delta eps/2 - p is positive when
    p < eps/2 and counts in the divisor."""
    p = P(iou_loss="iou", iou_thresh=.99, label_smooth_eps=.4)
    z, truth, k = two_truths_one_cell(p, z_cls=[0, 1, -4])   # p2 = .018 < .2
    o, d = check(make_cfg, p, z, truth)
    assert np.sum(d[0, k, 5:, 2, 2] > 0) == 3


@pytest.mark.parametrize("kind", ["mse", "iou", "ciou"])
def test_random_iou_thresh_full(make_cfg, rng, kind):
    p = P(iou_loss=kind, iou_thresh=.25, iou_thresh_kind="giou", iou_normalizer=.3, obj_normalizer=.6,
          label_smooth_eps=.1, scale_x_y=1.05, ignore_thresh=.45)
    z, truth = random_case(rng, p, n=6)
    check(make_cfg, p, z, truth)


# ================================================================ 6. dialects


def test_alexeyab_key_switches_to_accumulation(make_cfg):
    """Two truths on one cell/anchor: pjreddie's box delta is the second
    truth's (overwritten); with iou_normalizer=1 (AlexeyAB's) the sum."""
    p = P(iou_loss="mse", iou_normalizer=1.0)
    z, truth, k = two_truths_one_cell(p)
    raw = {kk: vv for kk, vv in p.cfg().items() if kk in ("mask", "anchors", "classes", "num", "ignore_thresh", "truth_thresh")}
    o, _, dp = run(make_net(make_cfg, p, raw=raw), z, truth)
    o, dp = shaped(o, p), shaped(dp, p)
    rows = truth_rows(truth[0])
    last = np.zeros(E)
    delta_yolo_box(p, rows[1], o[0, k, :, 2, 2], last, p.mask[k], 2, 2)
    np.testing.assert_allclose(dp[0, k, 0:4, 2, 2], last[0:4], rtol=RTOL, atol=ATOL)
    raw["iou_normalizer"] = 1
    _, _, da = run(make_net(make_cfg, p, raw=raw), z, truth)
    np.testing.assert_allclose(shaped(da, p), yolo_loss_ref(o.reshape(1, -1, LH, LW), truth, p), rtol=RTOL, atol=ATOL)


# ================================================================ 7. NMS


def nms_ref(boxes, objs, probs, thresh, kind, beta):
    """do_nms_sort / diounms_sort; returns the probabilities in input order."""
    probs = np.array(probs, np.float64)
    live = [i for i in range(len(boxes)) if objs[i] != 0]
    for k in range(probs.shape[1]):
        order = sorted(live, key=lambda i: -probs[i, k])
        for a, i in enumerate(order):
            if probs[i, k] == 0:
                continue
            for j in order[a + 1:]:
                if kind == 0:
                    m = box_iou(boxes[i], boxes[j])
                elif kind == 1:
                    m = box_iou_kind(boxes[i], boxes[j], "diou")
                else:
                    m = box_diounms(boxes[i], boxes[j], beta)
                if m > thresh:
                    probs[j, k] = 0
    return probs


def run_nms(lib, boxes, objs, probs, thresh, kind, beta):
    d, arr, probs, _ = c_detections(boxes, objs, probs)
    assert lib.dn_nms(ctypes.byref(d), thresh, kind, beta) == 0
    return probs


# a = (.5, .5, .4, .4), b = (.6, .5, .4, .4): IoU = .12/.2 = .6, d^2/c^2 = .01/.41
PAIR = [(.5, .5, .4, .4), (.6, .5, .4, .4)]


def test_nms_pair_values():
    a, b = PAIR
    assert box_iou(a, b) == pytest.approx(.6)
    assert box_iou_kind(a, b, "diou") == pytest.approx(.6 - (.01 / .41) ** .6)   # ~ .492
    assert box_diounms(a, b, 2) == pytest.approx(.6 - (.01 / .41) ** 2)          # ~ .599


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("kind,beta,suppressed", [
    (0, 0.0, True),     # IoU .6 > .55
    (1, 0.6, False),    # greedynms: .6 - (d2/c2)^.6 = .49 < .55
    (1, 2.0, False),    # greedynms ignores beta_nms
    (2, 0.6, False),    # diounms beta .6: as greedynms
    (2, 2.0, True),     # diounms beta 2: .599 > .55
    (2, 0.3, False),
])
def test_nms_kinds_pair(lib, swap, kind, beta, suppressed):
    """Class 0: box order/probabilities as given; class 1: the other way
    round; the lower probability is the one suppressed, per class."""
    boxes = PAIR[::-1] if swap else PAIR
    probs = [[.9, .3], [.7, .8]]
    out = run_nms(lib, boxes, [1, 1], probs, .55, kind, beta)
    want = nms_ref(boxes, [1, 1], probs, .55, kind, beta)
    np.testing.assert_allclose(out, want, rtol=1e-6)
    if suppressed:
        assert out.tolist() == [[pytest.approx(.9), 0], [0, pytest.approx(.8)]]
    else:
        np.testing.assert_allclose(out, probs, rtol=1e-6)


@pytest.mark.parametrize("kind,beta,thresh", [(0, 0, .45), (1, .6, .3), (2, .6, .3), (2, 1.5, .45)])
def test_nms_chain_and_zero_objectness(lib, kind, beta, thresh):
    """A suppresses B, B would suppress C but a suppressed box suppresses
    nothing; a box with objectness 0 takes no part."""
    boxes = [(.50, .5, .4, .4), (.53, .5, .4, .4), (.66, .5, .4, .4), (.51, .5, .4, .4)]
    objs = [1, 1, 1, 0]
    probs = [[.9], [.8], [.7], [.95]]
    out = run_nms(lib, boxes, objs, probs, thresh, kind, beta)
    want = nms_ref(boxes, objs, probs, thresh, kind, beta)
    np.testing.assert_allclose(out, want, rtol=1e-6)
    assert out[1, 0] == 0 and out[2, 0] > 0 and out[3, 0] > 0 and out[0, 0] > 0


@pytest.mark.parametrize("kind,beta", [(0, 0), (1, .6), (1, 3), (2, .6), (2, 1.0), (2, .25)])
def test_nms_random(lib, rng, kind, beta):
    for _ in range(10):
        n = 25
        boxes = [f32((*rng.uniform(.3, .7, 2), *rng.uniform(.1, .4, 2))) for _ in range(n)]
        objs = [float(v) for v in (rng.uniform(size=n) > .1)]
        probs = np.where(rng.uniform(size=(n, 3)) > .3, rng.uniform(.01, 1, (n, 3)), 0).astype(np.float32)
        out = run_nms(lib, boxes, objs, probs, .45, kind, beta)
        np.testing.assert_array_equal(out != 0, nms_ref(boxes, objs, probs, .45, kind, beta) != 0)


# ================================================================ 8. errors


def yolo_text(key, value):
    lines = ["[net]", "width=8", "height=6", f"channels={E}", "", "[maxpool]", "size=1", "stride=1", "",
             "[yolo]", "mask=0", f"anchors={','.join(map(str, ANCHORS))}", f"num={NUM}", f"classes={CLASSES}",
             f"{key}={value}", "ignore_thresh=.5"]
    return "\n".join(lines) + "\n", lines.index(f"{key}={value}") + 1


@pytest.mark.parametrize("key,value", [
    ("scale_x_y", -1), ("iou_loss", "foo"), ("iou_thresh_kind", "bar"), ("nms_kind", "softnms"),
    ("iou_thresh", 1.5), ("iou_thresh", -.1), ("new_coords", 2), ("objectness_smooth", 3),
    ("iou_normalizer", -1), ("obj_normalizer", -.5), ("label_smooth_eps", -.1),
])
def test_bad_yolo_values_name_file_and_line(make_cfg, key, value):
    text, line = yolo_text(key, value)
    path = make_cfg(text)
    with pytest.raises(dn.DarknetError) as e:
        dn.Network(path)
    assert f"{path}:{line}" in str(e.value)
    assert key in str(e.value)


@pytest.mark.parametrize("key", ["xnor", "binary"])
def test_binary_conv_refused(make_cfg, key):
    lines = ["[net]", "width=8", "height=8", "channels=3", "", "[convolutional]", "filters=4", "size=3",
             "pad=1", f"{key}=1", "activation=leaky"]
    path = make_cfg("\n".join(lines) + "\n")
    with pytest.raises(dn.DarknetError) as e:
        dn.Network(path)
    assert f"{path}:10" in str(e.value) and key in str(e.value)


def test_good_values_accepted(make_cfg):
    for key, value in [("scale_x_y", 1.05), ("iou_loss", "ciou"), ("nms_kind", "diounms"), ("iou_thresh", 1),
                       ("iou_thresh", 0), ("new_coords", 1), ("objectness_smooth", 1), ("iou_normalizer", 0)]:
        dn.Network(make_cfg(yolo_text(key, value)[0]))
