"""The [yolo] decode against an outside oracle: OpenCV's Darknet importer
(cv2.dnn.readNetFromDarknet) on the same cfg, the same .weights and the same
input array.

Cases: yolo-fastest-1.1-coco with its trained weights (as shipped, and a copy
with scale_x_y=1.15 in every [yolo]); yolov4-tiny.cfg (scale_x_y=1.05, and a
copy with scale_x_y=1.3), yolov4.cfg (scale_x_y 1.2/1.1/1.05) and
yolov4-csp.cfg (new_coords=1, scale_x_y=2.0) from AlexeyAB with random weights
(yolov4 and yolov4-csp at 256x256 to stay fast). Two VOC images, resized
(cv2.INTER_LINEAR) to the network size beforehand, so both sides get the
identical planar RGB [0,1] blob (cv2.dnn.blobFromImage(..., swapRB=True)).

Compared before NMS, row by row in the order (yolo layer, cell row-major,
anchor of the mask), which is both OpenCV's row order and ours:
  - the raw output of the conv feeding each [yolo] (diagnostic: when it
    differs, the decode comparison means nothing);
  - objectness within 2e-3, for every row;
  - the rows kept (objectness > thresh) the same, up to rows within 2e-3 of
    thresh;
  - boxes (centre x, y, w, h in pixels of the network input) within 1 px on
    the rows both keep;
  - class scores (objectness * class probability, zeroed when <= thresh)
    within 2e-3, same argmax class where the best score > 0.1, and the same
    set of rows with a score > 0.1 (up to rows within 2e-3 of 0.1).

OpenCV conventions accounted for (OpenCV's RegionLayer, which its Darknet
importer makes of each [yolo]):
  - it reads `thresh` (default 0.2) and `nms_threshold` from the [yolo]
    section; class scores <= thresh are zeroed, and nms_threshold > 0 (0 by
    default in OpenCV 4.14, 0.4 in some older importers) runs a per-class NMS
    inside the layer. The cfg copy given to OpenCV sets thresh=THRESH and
    nms_threshold=0; ours gets THRESH as the detections() argument and nms=0.
  - every cell and anchor is a row (objectness is never zeroed: classfix=0);
    x, y, w, h are relative to the network input (its blob size);
  - scale_x_y: x = (col + (sigmoid(tx) - 0.5) * scale_x_y + 0.5) / grid_w
    (AlexeyAB's scal_add of scale_x_y, -0.5 * (scale_x_y - 1));
  - new_coords=1: no sigmoid in the [yolo] layer at all (the conv before it
    has activation=logistic): x = (col + (tx - 0.5) * scale_x_y + 0.5) / grid_w,
    w = tw^2 * 4 * anchor_w / net_w, objectness = to, class = to * tc.
Random weights: the init is a deep stack whose activations grow to ~1e5, so
the 1x1 conv before each [yolo] is rescaled (per output channel, so that its
pre-activation has std 1.5 on the first image, biases N(0, 1); t_w, t_h std
0.5, bias 0) before the weights are saved for both sides; otherwise exp(t_w)
overflows and sigmoids saturate.
Agreement is ~1e-3 px and ~1e-5 in scores, so the 1 px tolerance (the issue's)
is loose: a missing scale_x_y moves x, y by at most
(scale_x_y - 1) / 2 * stride, 0.8 px for every [yolo] of stock yolov4 and
yolov4-tiny; the copies with scale_x_y 1.15 (2.4 px at stride 32) and 1.3
(4.8 px) are there to catch it.
"""
import os
import re

import numpy as np
import pytest

from conftest import SHARED, rel_err

cv2 = pytest.importorskip("cv2")
import darknet_py as dn  # noqa: E402

FASTEST = os.path.join(SHARED, "models", "yolo-fastest")
ALEXEYAB = os.path.join(SHARED, "reference", "alexeyab-cfg")
JPEGS = [os.path.join(SHARED, "data", d, "VOCdevkit", "VOC2007", "JPEGImages")
         for d in ("voc2007", "voc-mini")]

THRESH = 0.005      # detections() thresh and OpenCV's [yolo] thresh
CLS_THRESH = 0.1    # rows "present": best class score above this
SCORE_TOL = 2e-3
BOX_TOL_PX = 1.0
RAW_TOL = 1e-3      # max abs diff of the conv before [yolo] / its max abs
CALIB_STD = 1.5     # pre-activation std of x, y, objectness, classes
CALIB_STD_WH = 0.5  # and of t_w, t_h

FASTEST_CFG = os.path.join(FASTEST, "yolo-fastest-1.1-coco.cfg")
FASTEST_WEIGHTS = os.path.join(FASTEST, "yolo-fastest-1.1-coco.weights")

# name: cfg, weights (None: random), net size (None: the cfg's), [yolo] options
CASES = {
    "yolo-fastest-1.1-coco": (FASTEST_CFG, FASTEST_WEIGHTS, None, {}),
    "yolo-fastest-1.1-coco-scale_x_y-1.15": (FASTEST_CFG, FASTEST_WEIGHTS, None, {"scale_x_y": 1.15}),
    "yolov4-tiny": (os.path.join(ALEXEYAB, "yolov4-tiny.cfg"), None, None, {}),
    "yolov4-tiny-scale_x_y-1.3": (os.path.join(ALEXEYAB, "yolov4-tiny.cfg"), None, None, {"scale_x_y": 1.3}),
    "yolov4-256": (os.path.join(ALEXEYAB, "yolov4.cfg"), None, 256, {}),
    "yolov4-csp-256": (os.path.join(ALEXEYAB, "yolov4-csp.cfg"), None, 256, {}),
}
IMAGES = ("000009.jpg", "000012.jpg")


def _images():
    """Two VOC JPEGs: IMAGES from VOC2007, else the first two of voc-mini."""
    full, mini = JPEGS
    if all(os.path.exists(os.path.join(full, f)) for f in IMAGES):
        return [os.path.join(full, f) for f in IMAGES]
    if os.path.isdir(mini):
        found = sorted(f for f in os.listdir(mini) if f.endswith(".jpg"))[:2]
        if len(found) == 2:
            return [os.path.join(mini, f) for f in found]
    return None


def _edit_cfg(src, dst, net=None, yolo=None):
    """Copy a cfg, setting options in [net] and in every [yolo] (replaced
    where present, else appended to the section)."""
    out, pending = [], {}

    def flush():
        out.extend(f"{k}={v}" for k, v in pending.items())
        pending.clear()

    with open(src) as f:
        lines = f.read().splitlines()
    for line in lines:
        s = line.strip()
        if s.startswith("["):
            flush()
            out.append(line)
            pending.update((net if s == "[net]" else yolo if s == "[yolo]" else None) or {})
            continue
        m = re.match(r"\s*([A-Za-z_0-9]+)\s*=", line)
        if m and m.group(1) in pending:
            out.append(f"{m.group(1)}={pending.pop(m.group(1))}")
        else:
            out.append(line)
    flush()
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


def _yolo_layers(net):
    return [i for i, l in enumerate(net.layers) if l["type"] == "yolo"]


def _calibrate_random(net, blob, path):
    """Rescale the 1x1 conv before each [yolo] of a randomly initialised net
    (see the module doc), save the weights to path."""
    net.forward(blob)
    rng = np.random.default_rng(7)
    for i in _yolo_layers(net):
        L = net.layers[i - 1]
        assert L["type"] == "convolutional" and L["size"] == 1 and not L["batch_normalize"] \
            and L.get("groups", 1) == 1, f"layer {i - 1}: expected a plain 1x1 conv before [yolo]"
        a = net.layer_output(i - 2)[0].astype(np.float64)
        p = net.params(i - 1)
        f = p["biases"].size
        W = p["weights"].reshape(f, -1)
        z = W.astype(np.float64) @ a.reshape(a.shape[0], -1)
        entry = np.arange(f) % (5 + net.layers[i]["classes"])
        wh = (entry == 2) | (entry == 3)   # t_w, t_h: boxes of sane size, exp() far from overflow
        std = np.where(wh, CALIB_STD_WH, CALIB_STD)
        W *= (std / np.maximum(z.std(1), 1e-12)).astype(np.float32)[:, None]
        p["biases"][:] = np.where(wh, 0, rng.normal(0, 1, f)).astype(np.float32)
    net.save_weights(path)


_CACHE = {}


def _run(name, tmp_path_factory):
    if name in _CACHE:
        return _CACHE[name]
    cfg, weights, size, yolo_opts = CASES[name]
    images = _images()
    for p in (cfg, weights):
        if p is not None and not os.path.exists(p):
            pytest.skip(f"{p} is not there (../shared)")
    if images is None:
        pytest.skip("no VOC JPEGs under ../shared/data")
    d = tmp_path_factory.mktemp("oracle")
    net_opts = {"batch": 1, "subdivisions": 1}
    if size:
        net_opts.update(width=size, height=size)
    ours_cfg, cv_cfg = str(d / "ours.cfg"), str(d / "opencv.cfg")
    _edit_cfg(cfg, ours_cfg, net=net_opts, yolo=yolo_opts)
    _edit_cfg(cfg, cv_cfg, net=net_opts, yolo=dict(yolo_opts, thresh=THRESH, nms_threshold=0))

    net = dn.Network(ours_cfg, weights)
    _, c, h, w = net.input_shape
    blobs = []
    for f in images:
        img = cv2.imread(f)
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        blob = cv2.dnn.blobFromImage(img, 1 / 255.0, (w, h), swapRB=True, crop=False)
        mine = img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
        assert blob.shape == (1, c, h, w) and np.abs(blob[0] - mine).max() < 1e-6
        blobs.append(blob)
    if weights is None:
        weights = str(d / "random.weights")
        _calibrate_random(net, blobs[0], weights)
        net.load_weights(weights)  # what OpenCV reads
    yl = _yolo_layers(net)

    cvn = cv2.dnn.readNetFromDarknet(cv_cfg, weights)
    cvn.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    cvn.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    cv_yolo = sorted(cvn.getUnconnectedOutLayersNames(), key=lambda s: int(s.rsplit("_", 1)[1]))
    # OpenCV names a [yolo] yolo_<darknet index>; before it comes permute_<index>,
    # and before that the output of the conv (conv_/logistic_<index - 1>)
    assert [int(s.rsplit("_", 1)[1]) for s in cv_yolo] == yl, (cv_yolo, yl)
    names = list(cvn.getLayerNames())
    cv_pre = [names[names.index(f"permute_{i}") - 1] for i in yl]

    res = {"w": w, "h": h, "yolo": yl, "grids": [], "images": []}
    for blob in blobs:
        net.forward(blob)
        pre = [net.layer_output(i - 1).copy() for i in yl]
        grids = []
        for i in yl:
            _, ch, gh, gw = net.layer_output(i).shape
            grids.append((gh, gw, ch // (5 + net.layers[i]["classes"])))
        all_ = net._net.detections(0, w, h, 0.0, False, False, 0.0)
        kept = net._net.detections(0, w, h, THRESH, False, False, 0.0)
        cvn.setInput(blob)
        outs = cvn.forward(cv_yolo + cv_pre)
        cv_rows = np.concatenate([np.asarray(o).reshape(-1, o.shape[-1]) for o in outs[:len(yl)]])
        res["grids"] = grids
        res["images"].append({"pre": pre, "cv_pre": [np.asarray(o) for o in outs[len(yl):]],
                              "all": all_, "kept": kept, "cv": cv_rows})
    _CACHE[name] = res
    return res


def _where(res, r):
    """(yolo layer, cell row, cell col, anchor) of row r."""
    for i, (gh, gw, na) in zip(res["yolo"], res["grids"]):
        if r < gh * gw * na:
            return int(i), int(r // na // gw), int(r // na % gw), int(r % na)
        r -= gh * gw * na
    raise IndexError(r)


@pytest.mark.parametrize("name", list(CASES))
def test_raw_output_before_yolo(name, tmp_path_factory):
    """Diagnostic: the conv feeding each [yolo] equals OpenCV's."""
    res = _run(name, tmp_path_factory)
    for k, im in enumerate(res["images"]):
        for i, a, b in zip(res["yolo"], im["pre"], im["cv_pre"]):
            assert a.shape == b.shape, (i, a.shape, b.shape)
            e = rel_err(a, b)
            assert e < RAW_TOL, f"{name} image {k}: layer {i - 1} (before [yolo] {i}) rel err {e:.3g}"


def _compare(res, k, all_, kept):
    """Our detections of image k (all_: thresh=0, kept: thresh=THRESH, as
    detections() returns them) against OpenCV's rows: (problems, summary)."""
    w, h = res["w"], res["h"]
    cv = res["images"][k]["cv"].astype(np.float64)
    box_a, obj_a, _ = (np.asarray(v, np.float64) for v in all_)
    box_k, obj_k, prob_k = (np.asarray(v, np.float64) for v in kept)
    n = len(cv)
    assert n == sum(gh * gw * na for gh, gw, na in res["grids"])
    assert len(obj_a) == n, f"detections(thresh=0) gave {len(obj_a)} rows, want all {n}"
    cv_obj, cv_box, cv_prob = cv[:, 4], cv[:, :4] * [w, h, w, h], cv[:, 5:]
    problems = []

    def bad(mask, what, diff=None):
        idx = np.nonzero(mask)[0]
        if len(idx):
            r = idx[0] if diff is None else idx[np.argmax(diff[idx])]
            problems.append(f"image {k}: {what}: {len(idx)} rows, e.g. row {r} "
                            f"(yolo layer, cell row, col, anchor) {_where(res, r)}")

    # objectness, every row
    d_obj = np.abs(obj_a - cv_obj)
    bad(d_obj > SCORE_TOL, f"objectness differs by up to {d_obj.max():.3g}", d_obj)

    # rows kept: objectness > THRESH
    mine = obj_a > THRESH
    theirs = cv_obj > THRESH
    assert len(obj_k) == mine.sum() and np.array_equal(obj_k, obj_a[mine]) \
        and np.array_equal(box_k, box_a[mine]), "detections(thresh) is not the thresh=0 rows with obj > thresh"
    near = (np.abs(obj_a - THRESH) <= SCORE_TOL) | (np.abs(cv_obj - THRESH) <= SCORE_TOL)
    bad((mine ^ theirs) & ~near, f"kept rows differ ({mine.sum()} ours, {theirs.sum()} OpenCV)")
    both = mine & theirs

    # boxes, rows both keep
    d_box = np.abs(box_a - cv_box)
    d_box[~both] = 0
    worst = d_box.max(1)
    bad(worst > BOX_TOL_PX, "box differs by up to %s px (x, y, w, h)" % np.round(d_box.max(0), 3).tolist(), worst)

    # class scores, rows both keep; a score zeroed (<= THRESH) on one side
    # only is fine when the other is within SCORE_TOL of THRESH
    p_o = np.zeros_like(cv_prob)
    p_o[mine] = prob_k
    p_o[~both] = 0
    p_c = np.where(both[:, None], cv_prob, 0)
    d_p = np.abs(p_o - p_c)
    edge = (np.minimum(p_o, p_c) == 0) & (np.maximum(p_o, p_c) <= THRESH + SCORE_TOL)
    d_pe = np.where(edge, 0, d_p).max(1)
    bad(d_pe > SCORE_TOL, f"class score differs by up to {d_pe.max():.3g}", d_pe)

    # argmax class where the best score is above CLS_THRESH (ties within SCORE_TOL pass)
    best_o, best_c = p_o.max(1), p_c.max(1)
    cls_o, cls_c = p_o.argmax(1), p_c.argmax(1)
    scored = (best_o > CLS_THRESH) | (best_c > CLS_THRESH)
    tie = p_c[np.arange(n), cls_o] >= best_c - SCORE_TOL
    bad(scored & (cls_o != cls_c) & ~tie, "class (argmax) differs")

    # the same rows present with a score > CLS_THRESH, over all rows
    full_o = np.zeros(n)
    full_o[mine] = prob_k.max(1) if len(prob_k) else 0
    full_c = cv_prob.max(1)
    pres_o, pres_c = full_o > CLS_THRESH, full_c > CLS_THRESH
    near_c = (np.abs(full_o - CLS_THRESH) <= SCORE_TOL) | (np.abs(full_c - CLS_THRESH) <= SCORE_TOL)
    bad((pres_o ^ pres_c) & ~near_c,
        f"rows with a score > {CLS_THRESH} differ ({pres_o.sum()} ours, {pres_c.sum()} OpenCV)")
    summary = (f"image {k}: {n} rows, kept {mine.sum()}/{theirs.sum()} (ours/OpenCV), "
               f"> {CLS_THRESH}: {pres_o.sum()}/{pres_c.sum()}; max diff: objectness {d_obj.max():.2g}, "
               f"box px {np.round(d_box.max(0), 4).tolist()}, class score {d_pe.max():.2g}")
    return problems, summary


@pytest.mark.parametrize("name", list(CASES))
def test_decode_matches_opencv(name, tmp_path_factory):
    res = _run(name, tmp_path_factory)
    problems, summaries = [], []
    for k, im in enumerate(res["images"]):
        p, s = _compare(res, k, im["all"], im["kept"])
        problems += p
        summaries.append(s)
    assert not problems, f"{name} vs OpenCV:\n  " + "\n  ".join(problems + summaries)
