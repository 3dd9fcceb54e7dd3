"""Training losses of the detector heads ([region], [yolo], [detection]):
the C cost and deltas against NumPy references of Darknet's
forward_region_layer, forward_yolo_layer and forward_detection_layer written
here, finite-difference checks of the deltas against the energies whose
gradients they are, and small overfitting runs that end in decoding the boxes
that were learnt.

Conventions checked: the delta the network hands back (backward(None)) is
dL/d(detector input), the negative of Darknet's (target - output) deltas;
the cost is Darknet's: the sum of the squared deltas."""
import numpy as np
import pytest

import darknet_py as dn
from darknet_py.errors import DarknetUnsupportedError

# ---------------------------------------------------------------- references

NONE, SQ_LOGISTIC, SQ_LINEAR, BCE = 0, 1, 2, 3


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def box_iou(a, b):
    def overlap(x1, w1, x2, w2):
        return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)
    w, h = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if w < 0 or h < 0 else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def truth_rows(t):
    """Darknet's truth list of one image: stops at the first row with x == 0 or w == 0."""
    rows = []
    for r in np.asarray(t, np.float64):
        if r[0] == 0 or r[2] == 0:
            break
        rows.append(r)
    return rows


class Terms:
    """The loss as per-entry terms with frozen targets (the IoU targets and
    ignore decisions are constants, as in Darknet), on the layer input z of
    shape (N, anchors, entries, H, W):
      SQ_LOGISTIC: scale/2 * (t - sigmoid(z))^2
      SQ_LINEAR:   scale/2 * (t - z)^2
      BCE:         scale * binary cross-entropy(t, sigmoid(z))
    plus softmax cross-entropy groups {key: ((b, a, j, i), first, n, class,
    scale)} over z[b, a, first:first+n, j, i].
    A later assignment replaces an earlier one, as Darknet overwrites deltas."""

    def __init__(self, shape):
        self.kind = np.zeros(shape, int)
        self.scale = np.zeros(shape)
        self.target = np.zeros(shape)
        self.groups = {}

    def set(self, idx, kind, scale, target):
        self.kind[idx], self.scale[idx], self.target[idx] = kind, scale, target

    def parts(self, z):
        """The energy as per-entry terms (an array like z) and the groups'
        terms {key: energy}."""
        s = sigmoid(z)
        k, sc, t = self.kind, self.scale, self.target
        with np.errstate(divide="ignore", invalid="ignore"):
            bce = -(t * np.log(s) + (1 - t) * np.log(1 - s))
        e = np.where(k == SQ_LOGISTIC, .5 * sc * (t - s) ** 2, 0)
        e = np.where(k == SQ_LINEAR, .5 * sc * (t - z) ** 2, e)
        e = np.where(k == BCE, sc * bce, e)
        groups = {}
        for key, ((b, a, j, i), first, n, cls, scale) in self.groups.items():
            v = z[b, a, first:first + n, j, i]
            groups[key] = -scale * (v[cls] - v.max() - np.log(np.sum(np.exp(v - v.max()))))
        return e, groups

    def energy(self, z):
        e, groups = self.parts(z)
        return e.sum() + sum(groups.values())

    def darknet_delta(self, o):
        """Darknet's deltas (target - output) from the outputs o: with the
        logistic derivative for SQ_LOGISTIC, without it otherwise."""
        k, sc, t = self.kind, self.scale, self.target
        d = np.where(k == SQ_LOGISTIC, sc * (t - o) * o * (1 - o), 0.0)
        d = np.where((k == SQ_LINEAR) | (k == BCE), sc * (t - o), d)
        for (b, a, j, i), first, n, cls, scale in self.groups.values():
            p = o[b, a, first:first + n, j, i]
            d[b, a, first:first + n, j, i] = scale * (np.eye(n)[cls] - p)
        return d


def region_ref(x, truth, anchors, num, classes, seen, rescore=0, bias_match=1, use_softmax=1,
               thresh=.6, object_scale=5., noobject_scale=1., class_scale=1., coord_scale=1.):
    """Darknet's forward_region_layer, training part (coords=4), on the layer
    input x (N x C x H x W). Returns (terms, outputs), both (N, num, 4+1+classes, H, W)."""
    n_, _, h, w = x.shape
    z = x.reshape(n_, num, 5 + classes, h, w).astype(np.float64)
    o = z.copy()
    o[:, :, 0:2] = sigmoid(z[:, :, 0:2])
    o[:, :, 4] = sigmoid(z[:, :, 4])
    o[:, :, 5:] = softmax(z[:, :, 5:], 2) if use_softmax else sigmoid(z[:, :, 5:])
    L = Terms(z.shape)

    def pred(b, a, j, i):
        return ((i + o[b, a, 0, j, i]) / w, (j + o[b, a, 1, j, i]) / h,
                np.exp(o[b, a, 2, j, i]) * anchors[2 * a] / w, np.exp(o[b, a, 3, j, i]) * anchors[2 * a + 1] / h)

    def delta_box(t, b, a, j, i, scale):
        L.set((b, a, 0, j, i), SQ_LOGISTIC, scale, t[0] * w - i)
        L.set((b, a, 1, j, i), SQ_LOGISTIC, scale, t[1] * h - j)
        L.set((b, a, 2, j, i), SQ_LINEAR, scale, np.log(t[2] * w / anchors[2 * a]))
        L.set((b, a, 3, j, i), SQ_LINEAR, scale, np.log(t[3] * h / anchors[2 * a + 1]))
        return box_iou(pred(b, a, j, i), t)

    for b in range(n_):
        rows = truth_rows(truth[b])
        for j in range(h):
            for i in range(w):
                for a in range(num):
                    best = max([box_iou(pred(b, a, j, i), r[:4]) for r in rows], default=0)
                    L.set((b, a, 4, j, i), NONE if best > thresh else SQ_LOGISTIC, noobject_scale, 0)
                    if seen < 12800:
                        delta_box(((i + .5) / w, (j + .5) / h, anchors[2 * a] / w, anchors[2 * a + 1] / h),
                                  b, a, j, i, .01)
        for r in rows:
            i, j = int(r[0] * w), int(r[1] * h)
            best, best_a = 0, 0
            for a in range(num):
                pw, ph = pred(b, a, j, i)[2:]
                if bias_match:
                    pw, ph = anchors[2 * a] / w, anchors[2 * a + 1] / h
                v = box_iou((0, 0, pw, ph), (0, 0, r[2], r[3]))
                if v > best:
                    best, best_a = v, a
            iou = delta_box(r, b, best_a, j, i, coord_scale * (2 - r[2] * r[3]))
            L.set((b, best_a, 4, j, i), SQ_LOGISTIC, object_scale, iou if rescore else 1)
            cls = int(r[4])
            if use_softmax:
                L.groups[(b, best_a, j, i)] = ((b, best_a, j, i), 5, classes, cls, class_scale)
            elif L.kind[b, best_a, 5, j, i] == BCE:  # classes already set by another truth
                L.set((b, best_a, 5 + cls, j, i), BCE, class_scale, 1)
            else:
                for c in range(classes):
                    L.set((b, best_a, 5 + c, j, i), BCE, class_scale, float(c == cls))
    return L, o


def yolo_best_anchor(r, anchors, netw, neth):
    best, best_a = 0, 0
    for a in range(len(anchors) // 2):
        v = box_iou((0, 0, anchors[2 * a] / netw, anchors[2 * a + 1] / neth), (0, 0, r[2], r[3]))
        if v > best:
            best, best_a = v, a
    return best_a


def yolo_ref(x, truth, anchors, mask, classes, netw, neth, ignore_thresh=.5, truth_thresh=1.):
    """Darknet's forward_yolo_layer, training part, on the layer input x."""
    n_, _, h, w = x.shape
    z = x.reshape(n_, len(mask), 5 + classes, h, w).astype(np.float64)
    o = z.copy()
    o[:, :, 0:2] = sigmoid(z[:, :, 0:2])
    o[:, :, 4:] = sigmoid(z[:, :, 4:])
    L = Terms(z.shape)

    def pred(b, n, j, i, anchor):
        return ((i + o[b, n, 0, j, i]) / w, (j + o[b, n, 1, j, i]) / h,
                np.exp(o[b, n, 2, j, i]) * anchors[2 * anchor] / netw,
                np.exp(o[b, n, 3, j, i]) * anchors[2 * anchor + 1] / neth)

    def delta_box(t, b, n, j, i, anchor):
        s = 2 - t[2] * t[3]
        L.set((b, n, 0, j, i), BCE, s, t[0] * w - i)
        L.set((b, n, 1, j, i), BCE, s, t[1] * h - j)
        L.set((b, n, 2, j, i), SQ_LINEAR, s, np.log(t[2] * netw / anchors[2 * anchor]))
        L.set((b, n, 3, j, i), SQ_LINEAR, s, np.log(t[3] * neth / anchors[2 * anchor + 1]))
        return box_iou(pred(b, n, j, i, anchor), t)

    def delta_class(b, n, j, i, cls):
        if L.kind[b, n, 5, j, i] == BCE:  # Darknet: delta already set -> only this class
            L.set((b, n, 5 + cls, j, i), BCE, 1, 1)
        else:
            for c in range(classes):
                L.set((b, n, 5 + c, j, i), BCE, 1, float(c == cls))

    for b in range(n_):
        rows = truth_rows(truth[b])
        for j in range(h):
            for i in range(w):
                for n, m in enumerate(mask):
                    ious = [box_iou(pred(b, n, j, i, m), r[:4]) for r in rows]
                    best = max(ious, default=0)
                    L.set((b, n, 4, j, i), NONE if best > ignore_thresh else BCE, 1, 0)
                    if best > truth_thresh:
                        r = rows[int(np.argmax(ious))]
                        L.set((b, n, 4, j, i), BCE, 1, 1)
                        delta_class(b, n, j, i, int(r[4]))
                        delta_box(r, b, n, j, i, m)
        for r in rows:
            a = yolo_best_anchor(r, anchors, netw, neth)
            if a not in mask:
                continue
            n, i, j = list(mask).index(a), int(r[0] * w), int(r[1] * h)
            delta_box(r, b, n, j, i, a)
            L.set((b, n, 4, j, i), BCE, 1, 1)
            delta_class(b, n, j, i, int(r[4]))
    return L, o


def fd_grad(L, z, eps=1e-5):
    """Central differences of L's energy at z. Each term of the energy
    depends on one entry or on the entries of one softmax group, so all
    entries are perturbed together in a few passes (pass m: the m-th entry of
    every group, and every other entry in pass 0) and each entry's difference
    is read off its own term."""
    colour = np.zeros(z.shape, int)
    for (b, a, j, i), first, n, _, _ in L.groups.values():
        colour[b, a, first:first + n, j, i] = np.arange(n)
    g = np.zeros_like(z)
    for c in range(colour.max() + 1):
        mask = colour == c
        ep, gp = L.parts(z + eps * mask)
        em, gm = L.parts(z - eps * mask)
        g = np.where(mask, (ep - em) / (2 * eps), g)
        for key, ((b, a, j, i), first, n, _, _) in L.groups.items():
            if c < n:
                g[b, a, first + c, j, i] = (gp[key] - gm[key]) / (2 * eps)
    return g


def test_fd_grad_matches_plain_differences(rng):
    """The pass-wise differences above agree with one-entry-at-a-time ones."""
    L = Terms((1, 2, 6, 2, 2))
    L.set((0, 0, 0, 1, 1), SQ_LOGISTIC, 2., .3)
    L.set((0, 1, 2, 0, 1), SQ_LINEAR, .5, -1.)
    L.set((0, 1, 4, 1, 0), BCE, 1.5, .7)
    L.groups[1] = ((0, 0, 0, 1), 2, 4, 1, 3.)
    L.groups[2] = ((0, 1, 1, 1), 3, 3, 2, 1.)
    z = rng.normal(0, 1, L.kind.shape)
    plain = np.zeros_like(z)
    for k in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[k] += 1e-5
        zm[k] -= 1e-5
        plain[k] = (L.energy(zp) - L.energy(zm)) / 2e-5
    np.testing.assert_allclose(fd_grad(L, z), plain, rtol=1e-6, atol=1e-9)
    assert np.count_nonzero(plain) == 3 + 4 + 3


def train_forward(net, x, truth):
    """Training forward on the detector input x with truth; returns (cost, dL/dx)."""
    net._net.set_truth(np.ascontiguousarray(truth, np.float32))
    net.forward(x)
    return net._net.cost, net._net.backward(None)


def check_against_ref(L, o, x, cost, grad, fd=True):
    d = L.darknet_delta(o)
    np.testing.assert_allclose(grad, -d.reshape(x.shape), rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(cost, np.sum(d ** 2), rtol=1e-4)
    if fd:
        z = x.reshape(o.shape).astype(np.float64)
        g = fd_grad(L, z)
        np.testing.assert_allclose(grad, g.reshape(x.shape), rtol=1e-3, atol=1e-5)


def logit(p):
    return float(np.log(p / (1 - p)))


# ------------------------------------------------------------------ [region]

R_ANCHORS = [1.5, 2, 0.5, 0.75, 3, 1]
R_W, R_H, R_NUM, R_CLASSES = 5, 4, 3, 3


def region_net(make_cfg, batch=2, **opts):
    sec = dict(anchors=",".join(map(str, R_ANCHORS)), num=R_NUM, classes=R_CLASSES, coords=4,
               softmax=1, bias_match=1, rescore=0, object_scale=5, noobject_scale=1,
               class_scale=1, coord_scale=1, thresh=.6)
    sec.update(opts)
    c = R_NUM * (5 + R_CLASSES)
    net = dn.Network(make_cfg({"width": R_W, "height": R_H, "channels": c}, ("region", sec)), batch=batch)
    net._net.set_train(True)
    return net


def region_case(rng):
    """Random input with hand-placed truths. Image 0: box A at cell (2, 2),
    whose shape is anchor 0's, while anchor 2 there predicts nearly A (so
    bias_match decides between anchors 0 and 2, and anchor 2's objectness is
    ignored: IoU > thresh); box B at cell (0, 0), anchor 1's shape. Image 1:
    one box, then an empty row, then a row that must be ignored."""
    c = R_NUM * (5 + R_CLASSES)
    x = rng.normal(0, 1, (2, c, R_H, R_W)).astype(np.float32)
    a = (0.5, 0.6, 0.3, 0.5)
    z = x.reshape(2, R_NUM, 5 + R_CLASSES, R_H, R_W)
    z[0, 2, 0:4, 2, 2] = np.array([logit(a[0] * R_W - 2), logit(a[1] * R_H - 2),
                                   np.log(a[2] * R_W / R_ANCHORS[4]), np.log(a[3] * R_H / R_ANCHORS[5])]) + .05
    truth = np.zeros((2, 4, 5), np.float32)
    truth[0, 0] = [*a, 2]
    truth[0, 1] = [0.15, 0.2, 0.1, 0.15, 1]
    truth[1, 0] = [0.72, 0.35, 0.5, 0.4, 0]
    truth[1, 2] = [0.3, 0.3, 0.2, 0.2, 1]  # after the empty row: not a box
    return x, truth


@pytest.mark.parametrize("seen", [0, 20000])
@pytest.mark.parametrize("rescore", [0, 1])
@pytest.mark.parametrize("bias_match", [1, 0])
def test_region_loss_matches_darknet(make_cfg, rng, seen, rescore, bias_match):
    net = region_net(make_cfg, rescore=rescore, bias_match=bias_match)
    net._net.seen = seen
    x, truth = region_case(rng)
    cost, grad = train_forward(net, x, truth)
    L, o = region_ref(x, truth, R_ANCHORS, R_NUM, R_CLASSES, seen, rescore, bias_match)
    check_against_ref(L, o, x, cost, grad)
    g = grad.reshape(o.shape)
    # box A goes to anchor 0 (its shape) with bias_match, else to anchor 2 (its prediction)
    best = 0 if bias_match else 2
    assert np.all(g[0, best, 0:5, 2, 2] != 0)
    if bias_match:  # anchor 2 predicts nearly A: objectness ignored
        assert g[0, 2, 4, 2, 2] == 0
    # the prior-matching pull acts only while seen < 12800 (cell (4, 3) has no truth)
    assert np.all(g[0, :, 0:4, 3, 4] != 0) == (seen < 12800)
    assert np.all(g[0, :, 0:4, 3, 4] == 0) == (seen >= 12800)


def test_region_logistic_classes(make_cfg, rng):
    net = region_net(make_cfg, softmax=0, rescore=1)
    x, truth = region_case(rng)
    truth[0, 2] = [0.16, 0.21, 0.1, 0.15, 2]  # same cell and anchor as box B: classes 1 and 2
    cost, grad = train_forward(net, x, truth)
    L, o = region_ref(x, truth, R_ANCHORS, R_NUM, R_CLASSES, 0, 1, 1, use_softmax=0)
    check_against_ref(L, o, x, cost, grad)
    g = grad.reshape(o.shape)
    assert g[0, 1, 5 + 1, 0, 0] < 0 and g[0, 1, 5 + 2, 0, 0] < 0 and g[0, 1, 5 + 0, 0, 0] > 0


def test_region_no_truth_and_scales(make_cfg, rng):
    net = region_net(make_cfg, noobject_scale=.5, coord_scale=3, class_scale=2, object_scale=4)
    net._net.seen = 50000
    x, truth = region_case(rng)
    cost, grad = train_forward(net, x, np.zeros_like(truth))
    L, o = region_ref(x, np.zeros_like(truth), R_ANCHORS, R_NUM, R_CLASSES, 50000, noobject_scale=.5)
    check_against_ref(L, o, x, cost, grad, fd=False)
    g = grad.reshape(o.shape)
    assert np.count_nonzero(g) == 2 * R_NUM * R_W * R_H  # only the objectness of every cell
    cost, grad = train_forward(net, x, truth)
    L, o = region_ref(x, truth, R_ANCHORS, R_NUM, R_CLASSES, 50000, noobject_scale=.5, coord_scale=3,
                      class_scale=2, object_scale=4)
    check_against_ref(L, o, x, cost, grad)


def test_truth_list_stops_at_first_empty_row(make_cfg, rng):
    net = region_net(make_cfg)
    x, truth = region_case(rng)
    cost, grad = train_forward(net, x, truth)
    cut = truth.copy()
    cut[1, 2] = 0
    cost2, grad2 = train_forward(net, x, cut)
    assert cost == cost2 and np.array_equal(grad, grad2)
    # a row with x == 0 ends the list too
    early = truth.copy()
    early[0, 1, 0] = 0
    cost3, _ = train_forward(net, x, early)
    only_a = cut.copy()
    only_a[0, 1] = 0
    cost4, _ = train_forward(net, x, only_a)
    assert cost3 == cost4 != cost


def test_set_truth_errors(make_cfg):
    net = region_net(make_cfg)
    t = np.zeros((2, 3, 5), np.float32)
    t[0, 0] = [.5, .5, .2, .2, 3]  # classes=3
    with pytest.raises(dn.DarknetValueError, match=r"image 0 box 0: class 3 is not an integer in \[0, 3\)"):
        net._net.set_truth(t)
    t[0, 0, 4] = 1.5
    with pytest.raises(dn.DarknetValueError, match="class 1.5"):
        net._net.set_truth(t)
    t[0, 0, 4] = 1
    t[1, 0] = [.5, .5, .2, np.nan, 0]
    with pytest.raises(dn.DarknetValueError, match="image 1 box 0"):
        net._net.set_truth(t)
    with pytest.raises(ValueError, match="2 x max_boxes x 5"):
        net._net.set_truth(np.zeros((1, 3, 5), np.float32))
    t[1, 0] = 0
    net._net.set_truth(t)
    net._net.set_truth(np.zeros((2, 0, 5), np.float32))  # no boxes at all is fine


# --------------------------------------------------------------- [detection]

D_SIDE, D_NUM, D_CLASSES = 3, 2, 4


def detection_ref(x, truth, softmax_=1, sqrt=1, rescore=1, forced=0, object_scale=1.,
                  noobject_scale=.5, class_scale=1., coord_scale=5.):
    """Darknet's forward_detection_layer, training part, with the per-cell
    truth of its fill_truth_region. Terms on shape (N, 1, inputs, 1, 1)."""
    side, num, classes = D_SIDE, D_NUM, D_CLASSES
    cells = side * side
    n_ = x.shape[0]
    z = x.reshape(n_, 1, -1, 1, 1).astype(np.float64)
    o = z.copy()
    if softmax_:
        o[:, 0, :cells * classes, 0, 0] = softmax(z[:, 0, :cells * classes, 0, 0].reshape(n_, cells, classes),
                                                  2).reshape(n_, -1)
    L = Terms(z.shape)
    conf0, box0 = cells * classes, cells * (classes + num)

    def out_box(b, i, n):
        v = o[b, 0, box0 + (i * num + n) * 4:box0 + (i * num + n) * 4 + 4, 0, 0]
        e = 2 if sqrt else 1
        return (v[0] / side, v[1] / side, v[2] ** e, v[3] ** e)

    for b in range(n_):
        cell_truth = {}
        for r in truth_rows(truth[b]):
            if r[2] < .005 or r[3] < .005:
                continue
            cell_truth.setdefault(int(r[1] * side) * side + int(r[0] * side), r)
        for i in range(cells):
            for n in range(num):
                L.set((b, 0, conf0 + i * num + n, 0, 0), SQ_LINEAR, noobject_scale, 0)
            if i not in cell_truth:
                continue
            r = cell_truth[i]
            cls = int(r[4])
            if softmax_:
                L.groups[(b, i)] = ((b, 0, 0, 0), i * classes, classes, cls, class_scale)
            else:
                for c in range(classes):
                    L.set((b, 0, i * classes + c, 0, 0), SQ_LINEAR, class_scale, float(c == cls))
            tx, ty = r[0] * side - i % side, r[1] * side - i // side
            t = (tx / side, ty / side, r[2], r[3])
            best, best_iou, best_rmse = 0, 0, 20
            for n in range(num):
                ob = out_box(b, i, n)
                iou, rmse = box_iou(ob, t), np.sqrt(np.sum((np.array(ob) - t) ** 2))
                if best_iou > 0 or iou > 0:
                    if iou > best_iou:
                        best, best_iou = n, iou
                elif rmse < best_rmse:
                    best, best_rmse = n, rmse
            if forced:
                best = 1 if r[2] * r[3] < .1 else 0
            iou = box_iou(out_box(b, i, best), t)
            L.set((b, 0, conf0 + i * num + best, 0, 0), SQ_LINEAR, object_scale, iou if rescore else 1)
            k = box0 + (i * num + best) * 4
            tw, th = (np.sqrt(r[2]), np.sqrt(r[3])) if sqrt else (r[2], r[3])
            for e, v in enumerate((tx, ty, tw, th)):
                L.set((b, 0, k + e, 0, 0), SQ_LINEAR, coord_scale, v)
    return L, o


def detection_net(make_cfg, batch=2, **opts):
    sec = dict(classes=D_CLASSES, coords=4, rescore=1, side=D_SIDE, num=D_NUM, softmax=1, sqrt=1,
               object_scale=1, noobject_scale=.5, class_scale=1, coord_scale=5)
    sec.update(opts)
    n = D_SIDE * D_SIDE * (5 * D_NUM + D_CLASSES)
    net = dn.Network(make_cfg({"width": 1, "height": 1, "channels": n}, ("detection", sec)), batch=batch)
    net._net.set_train(True)
    return net


def detection_case(rng, sqrt):
    """Image 0: box A in cell 4 (the centre) where box 1 overlaps it, a
    second box in cell 4 (Darknet keeps the first per cell), a box too thin
    to count, a box in cell 6; image 1: one box, an empty row, a junk row."""
    cells = D_SIDE * D_SIDE
    n = cells * (5 * D_NUM + D_CLASSES)
    x = rng.normal(0, 1, (2, n, 1, 1)).astype(np.float32)
    a = (0.5, 0.45, 0.3, 0.4)
    k = cells * (D_CLASSES + D_NUM) + (4 * D_NUM + 1) * 4
    e = .5 if sqrt else 1
    x[0, k:k + 4, 0, 0] = [a[0] * 3 - 1 + .05, a[1] * 3 - 1 - .05, a[2] ** e + .05, a[3] ** e - .05]
    truth = np.zeros((2, 6, 5), np.float32)
    truth[0, 0] = [*a, 3]
    truth[0, 1] = [0.55, 0.5, 0.2, 0.2, 1]
    truth[0, 2] = [0.2, 0.2, 0.004, 0.3, 0]
    truth[0, 3] = [0.1, 0.9, 0.15, 0.25, 2]
    truth[1, 0] = [0.9, 0.1, 0.6, 0.5, 0]
    truth[1, 2] = [0.5, 0.5, 0.5, 0.5, 1]
    return x, truth


@pytest.mark.parametrize("softmax_,sqrt,rescore,forced", [(1, 1, 1, 0), (0, 0, 0, 0), (1, 0, 1, 1)])
def test_detection_loss_matches_darknet(make_cfg, rng, softmax_, sqrt, rescore, forced):
    net = detection_net(make_cfg, softmax=softmax_, sqrt=sqrt, rescore=rescore, forced=forced)
    x, truth = detection_case(rng, sqrt)
    cost, grad = train_forward(net, x, truth)
    L, o = detection_ref(x, truth, softmax_=softmax_, sqrt=sqrt, rescore=rescore, forced=forced)
    check_against_ref(L, o, x, cost, grad)
    if not forced:  # box 1 of the centre cell overlaps box A: it is the responsible one
        k = D_SIDE * D_SIDE * (D_CLASSES + D_NUM) + (4 * D_NUM + 1) * 4
        assert np.all(grad[0, k:k + 4] != 0) and np.all(grad[0, k - 4:k] == 0)


def test_detection_random_box_early_in_training(make_cfg, rng):
    """random=1: while seen < 64000 the responsible box is picked at random
    (so the deltas vary between runs); afterwards Darknet's rule applies."""
    net = detection_net(make_cfg, random=1)
    x, truth = detection_case(rng, 1)
    picks = set()
    for _ in range(20):
        _, grad = train_forward(net, x, truth)
        k = D_SIDE * D_SIDE * (D_CLASSES + D_NUM) + 4 * D_NUM * 4
        picks.add(tuple(np.any(grad[0, k + 4 * n:k + 4 * n + 4] != 0) for n in range(D_NUM)))
    assert picks == {(True, False), (False, True)}
    net._net.seen = 64000
    cost, grad = train_forward(net, x, truth)
    L, o = detection_ref(x, truth)
    check_against_ref(L, o, x, cost, grad, fd=False)


# -------------------------------------------------------------------- [yolo]

Y_ANCHORS = [1, 1, 2, 1.5, 1.5, 3, 3, 3, 5, 2.5, 6, 5]  # pixels of the 8 x 6 input
Y_W, Y_H, Y_CLASSES = 8, 6, 2


def yolo_net(make_cfg, mask, batch=2, **opts):
    sec = dict(mask=",".join(map(str, mask)), anchors=",".join(map(str, Y_ANCHORS)), classes=Y_CLASSES,
               num=6, ignore_thresh=.5, truth_thresh=1)
    sec.update(opts)
    c = len(mask) * (5 + sec["classes"])
    net = dn.Network(make_cfg({"width": Y_W, "height": Y_H, "channels": c}, ("yolo", sec)), batch=batch)
    net._net.set_train(True)
    return net


def yolo_case(rng, mask):
    """Box A (best anchor 1, mask [0, 1, 2]) at cell (2, 2), where mask
    anchor 0 predicts nearly A when it is in this layer's mask (its
    objectness is then ignored); box B (best anchor 5, mask [3, 4, 5]) at
    cell (5, 3); image 1: box C (anchor 3) and a box after an empty row."""
    c = len(mask) * (5 + Y_CLASSES)
    x = rng.normal(0, 1, (2, c, Y_H, Y_W)).astype(np.float32)
    truth = np.zeros((2, 3, 5), np.float32)
    a = (0.3, 0.4, 0.25, 0.25)
    truth[0, 0] = [*a, 1]
    truth[0, 1] = [0.7, 0.6, 0.7, 0.8, 0]
    truth[1, 0] = [0.45, 0.5, 0.4, 0.5, 1]
    truth[1, 2] = [0.8, 0.8, 0.1, 0.1, 0]
    assert [yolo_best_anchor(r, Y_ANCHORS, Y_W, Y_H) for r in (truth[0, 0], truth[0, 1], truth[1, 0])] == [1, 5, 3]
    if 0 in mask:
        n = mask.index(0)
        z = x.reshape(2, len(mask), 5 + Y_CLASSES, Y_H, Y_W)
        z[0, n, 0:4, 2, 2] = np.array([logit(a[0] * Y_W - 2), logit(a[1] * Y_H - 2),
                                       np.log(a[2] * Y_W / Y_ANCHORS[0]), np.log(a[3] * Y_H / Y_ANCHORS[1])]) + .05
    return x, truth


@pytest.mark.parametrize("mask", [[0, 1, 2], [3, 4, 5]])
def test_yolo_loss_matches_darknet(make_cfg, rng, mask):
    net = yolo_net(make_cfg, mask)
    x, truth = yolo_case(rng, mask)
    cost, grad = train_forward(net, x, truth)
    L, o = yolo_ref(x, truth, Y_ANCHORS, mask, Y_CLASSES, Y_W, Y_H)
    check_against_ref(L, o, x, cost, grad)
    g = grad.reshape(o.shape)
    # box deltas only where a truth's best anchor is in this mask
    boxes = np.argwhere(np.any(g[:, :, 0:4] != 0, axis=2))
    want = [(0, 1, 2, 2)] if mask == [0, 1, 2] else [(0, 2, 3, 5), (1, 0, 3, 3)]
    assert sorted(map(tuple, boxes)) == want
    if mask == [0, 1, 2]:
        assert g[0, 0, 4, 2, 2] == 0  # predicts box A: IoU > ignore_thresh
        assert np.all(g[0, :, 0:4, 3, 5] == 0)  # box B belongs to the other layer


def test_yolo_truth_thresh_and_shared_cell(make_cfg, rng):
    """truth_thresh < 1: predictions overlapping a truth enough are trained
    towards it too; two truths on one anchor: the second sets only its class."""
    mask = [0, 1, 2]
    net = yolo_net(make_cfg, mask, ignore_thresh=.3, truth_thresh=.6)
    x, truth = yolo_case(rng, mask)
    truth[0, 2] = [0.31, 0.41, 0.24, 0.26, 0]  # same cell and anchor as box A, class 0
    cost, grad = train_forward(net, x, truth)
    L, o = yolo_ref(x, truth, Y_ANCHORS, mask, Y_CLASSES, Y_W, Y_H, ignore_thresh=.3, truth_thresh=.6)
    check_against_ref(L, o, x, cost, grad)
    g = grad.reshape(o.shape)
    assert np.all(g[0, 0, 0:4, 2, 2] != 0) and g[0, 0, 4, 2, 2] < 0  # anchor 0 pulled to box A
    assert g[0, 1, 5, 2, 2] < 0 and g[0, 1, 6, 2, 2] < 0  # classes 0 and 1 both wanted


def test_inner_yolo_layer_keeps_its_loss(make_cfg, rng):
    """Two [yolo] heads in a row (as in yolov3 the first is not the last
    layer): backward(None) keeps the inner head's loss delta. Whatever the
    next layers add to a detector's delta is passed on unchanged, as in
    Darknet (no YOLO cfg reads a detector's output)."""
    c = 3 * (5 + Y_CLASSES)
    heads = [dict(mask="0,1,2"), dict(mask="3,4,5")]
    for h in heads:
        h.update(anchors=",".join(map(str, Y_ANCHORS)), classes=Y_CLASSES, num=6, ignore_thresh=.5)
    net = dn.Network(make_cfg({"width": Y_W, "height": Y_H, "channels": c},
                              ("yolo", heads[0]), ("yolo", heads[1])), batch=2)
    net._net.set_train(True)
    x, truth = yolo_case(rng, [0, 1, 2])
    cost, grad = train_forward(net, x, truth)
    L0, o0 = yolo_ref(x, truth, Y_ANCHORS, [0, 1, 2], Y_CLASSES, Y_W, Y_H)
    y0 = net.layer_output(0)
    L1, o1 = yolo_ref(y0, truth, Y_ANCHORS, [3, 4, 5], Y_CLASSES, Y_W, Y_H)
    d0, d1 = L0.darknet_delta(o0), L1.darknet_delta(o1)
    np.testing.assert_allclose(cost, np.sum(d0 ** 2) + np.sum(d1 ** 2), rtol=1e-4)
    np.testing.assert_allclose(grad, -(d0 + d1).reshape(x.shape), rtol=1e-4, atol=2e-6)


def test_yolo_loss_on_a_smaller_grid(make_cfg, rng):
    """[maxpool] 2/2 ahead of [yolo]: the 8 x 6 grid is half the 16 x 12
    network input, so tw = log(w*net_w/anchor_w) and the decoded box sizes use
    the network size, the cell offsets the grid. Runs once [maxpool] has its
    backward pass."""
    mask = [0, 1, 2]
    anchors = [2 * v for v in Y_ANCHORS]  # pixels of the 16 x 12 input
    sec = dict(mask="0,1,2", anchors=",".join(map(str, anchors)), classes=Y_CLASSES, num=6,
               ignore_thresh=.5, truth_thresh=1)
    c = len(mask) * (5 + Y_CLASSES)
    net = dn.Network(make_cfg({"width": 2 * Y_W, "height": 2 * Y_H, "channels": c},
                              ("maxpool", dict(size=2, stride=2)), ("yolo", sec)), batch=2)
    try:
        net._net.set_train(True)
    except DarknetUnsupportedError as e:
        pytest.skip(f"not trainable yet: {e}")
    z, truth = yolo_case(rng, mask)
    # an input whose 2x2 maxima are z, each at one random position of its block
    x = np.repeat(np.repeat(z, 2, axis=2), 2, axis=3)
    pick = rng.integers(0, 4, z.shape)
    is_max = (np.arange(4)[None, None, None, None] == pick[..., None]).reshape(*z.shape, 2, 2)
    is_max = is_max.transpose(0, 1, 2, 4, 3, 5).reshape(x.shape)
    x = np.where(is_max, x, x - rng.uniform(.1, 1, x.shape)).astype(np.float32)
    cost, grad = train_forward(net, x, truth)
    L, o = yolo_ref(z, truth, anchors, mask, Y_CLASSES, 2 * Y_W, 2 * Y_H)
    d = L.darknet_delta(o).reshape(z.shape)
    np.testing.assert_allclose(cost, np.sum(d ** 2), rtol=1e-4)
    want = np.where(is_max, np.repeat(np.repeat(-d, 2, axis=2), 2, axis=3), 0)
    np.testing.assert_allclose(grad, want, rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(-d, fd_grad(L, z.reshape(o.shape).astype(np.float64)).reshape(z.shape),
                               rtol=1e-3, atol=1e-5)


# ------------------------------------------------------------ overfitting


def overfit(net, truth, x0_shape, steps, lr, rng):
    """A 1x1 convolution written here (NumPy: features F -> detector input)
    trained by SGD with momentum on the C loss; returns (first cost, last cost)."""
    n, c, h, w = x0_shape
    k = h * w + 4
    feats = rng.normal(0, 1, (k, h * w))
    wt = rng.normal(0, .01, (c, k))
    bias = np.zeros((c, 1))
    vw, vb = np.zeros_like(wt), np.zeros_like(bias)
    costs = []
    for _ in range(steps):
        x = (wt @ feats + bias).reshape(1, c, h, w).astype(np.float32)
        cost, g = train_forward(net, x, truth)
        costs.append(cost)
        g = g.reshape(c, h * w).astype(np.float64)
        vw = .9 * vw - lr * (g @ feats.T)
        vb = .9 * vb - lr * g.sum(axis=1, keepdims=True)
        wt += vw
        bias += vb
    train_forward(net, (wt @ feats + bias).reshape(1, c, h, w).astype(np.float32), truth)
    return costs[0], net._net.cost


def assert_recovered(net, truth, thresh=.5):
    """After NMS, exactly the truth boxes are kept, with their classes."""
    boxes, obj, probs = net._net.detections(0, 100, 100, thresh, False, True, .45)
    kept = probs.max(axis=1) > thresh
    boxes, obj, probs = boxes[kept], obj[kept], probs[kept]
    rows = truth_rows(truth[0])
    assert len(boxes) == len(rows), (boxes, obj, probs)
    for r in rows:
        ious = [box_iou(b, r[:4]) for b in boxes]
        k = int(np.argmax(ious))
        assert ious[k] > .8 and np.argmax(probs[k]) == int(r[4]), (ious, probs)


@pytest.mark.parametrize("kind", ["region", "yolo", "detection"])
def test_overfit_one_image(make_cfg, kind):
    rng = np.random.default_rng(7)
    truth = np.zeros((1, 4, 5), np.float32)
    truth[0, 0] = [0.3, 0.35, 0.3, 0.4, 2]
    truth[0, 1] = [0.75, 0.7, 0.35, 0.25, 0]
    if kind == "region":
        net = region_net(make_cfg, batch=1, rescore=1)
        shape, lr = (1, R_NUM * (5 + R_CLASSES), R_H, R_W), .01
    elif kind == "yolo":
        net = yolo_net(make_cfg, [0, 1, 2, 3, 4, 5], batch=1, classes=3)
        shape, lr = (1, 6 * (5 + 3), Y_H, Y_W), .01
    else:
        net = detection_net(make_cfg, batch=1)
        shape, lr = (1, D_SIDE * D_SIDE * (5 * D_NUM + D_CLASSES), 1, 1), .01
    first, last = overfit(net, truth, shape, 100, lr, rng)
    assert last < .1 * first, (first, last)
    assert_recovered(net, truth)


def test_overfit_through_convolutions(make_cfg):
    """[net] + conv + [region] trained end to end by SGD on the C gradients;
    runs once the convolution has its backward pass."""
    cfg = make_cfg({"width": 20, "height": 20, "channels": 3},
                   ("convolutional", dict(size=3, stride=1, pad=1, filters=16, activation="leaky")),
                   ("maxpool", dict(size=2, stride=2)),
                   ("convolutional", dict(size=3, stride=2, pad=1, filters=32, activation="leaky")),
                   ("convolutional", dict(size=1, stride=1, filters=R_NUM * (5 + R_CLASSES), activation="linear")),
                   ("region", dict(anchors=",".join(map(str, R_ANCHORS)), num=R_NUM, classes=R_CLASSES,
                                   coords=4, softmax=1, bias_match=1, rescore=1, object_scale=5)))
    net = dn.Network(cfg, seed=1)
    try:
        net._net.set_train(True)
    except DarknetUnsupportedError as e:
        pytest.skip(f"not trainable yet: {e}")
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    x = image.transpose(2, 0, 1)[None].astype(np.float32) / 255
    truth = np.zeros((1, 4, 5), np.float32)
    truth[0, 0] = [0.3, 0.35, 0.3, 0.4, 2]
    truth[0, 1] = [0.75, 0.7, 0.35, 0.25, 0]
    trainable = [i for i, l in enumerate(net.layers) if l["type"] == "convolutional"]
    vel = {}
    costs = []
    for _ in range(150):
        net._net.zero_grads()
        cost, _ = train_forward(net, x, truth)
        costs.append(cost)
        for i in trainable:
            params, grads = net.params(i), net._net.grads(i)
            for name, g in grads.items():
                v = vel.setdefault((i, name), np.zeros_like(g))
                v *= .9
                v -= .002 * g
                params[name] += v
    train_forward(net, x, truth)
    assert net._net.cost < .1 * costs[0], (costs[0], net._net.cost)
    assert_recovered(net, truth)
