"""Detector heads ([region], [yolo], [detection]), box decoding, letterbox
correction, IoU and NMS, against NumPy references of Darknet's code written
here and hand-worked cases. IoU and NMS are called through ctypes on
libdarknet.so (built by make), since the Python module exposes NMS only
behind decoding."""
import ctypes
import os

import numpy as np
import pytest

import darknet_py as dn
from conftest import DARKNET_LIB, REF_CFG, SEED_CFG, Box, Dets, c_detections

# ---------------------------------------------------------------- references


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def softmax(x, axis):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def region_forward_ref(x, num, coords, classes, use_softmax=True, background=False):
    """Darknet's forward_region_layer (inference) on N x C x H x W."""
    n, _, h, w = x.shape
    y = x.reshape(n, num, coords + classes + 1, h, w).astype(np.float64)
    y[:, :, 0:2] = sigmoid(y[:, :, 0:2])
    if not background:
        y[:, :, coords] = sigmoid(y[:, :, coords])
    if use_softmax:
        first = coords + (0 if background else 1)
        y[:, :, first:] = softmax(y[:, :, first:], axis=2)
    else:
        y[:, :, coords + 1:] = sigmoid(y[:, :, coords + 1:])
    return y.reshape(x.shape)


def region_decode_ref(out, anchors, num, coords, classes, thresh, background=False):
    """Darknet's get_region_detections on one image C x H x W: boxes relative
    to the net input, dropping objectness <= thresh."""
    _, h, w = out.shape
    o = out.reshape(num, coords + classes + 1, h, w).astype(np.float64)
    boxes, objs, probs = [], [], []
    for a in range(num):
        for j in range(h):
            for i in range(w):
                obj = 1.0 if background else o[a, coords, j, i]
                if obj <= thresh:
                    continue
                boxes.append([(i + o[a, 0, j, i]) / w, (j + o[a, 1, j, i]) / h,
                              np.exp(o[a, 2, j, i]) * anchors[2 * a] / w,
                              np.exp(o[a, 3, j, i]) * anchors[2 * a + 1] / h])
                p = obj * o[a, coords + 1:, j, i]
                probs.append(np.where(p > thresh, p, 0))
                objs.append(obj)
    return np.array(boxes).reshape(-1, 4), np.array(objs), np.array(probs).reshape(-1, classes)


def yolo_forward_ref(x, nmask, classes):
    n, _, h, w = x.shape
    y = x.reshape(n, nmask, classes + 5, h, w).astype(np.float64)
    y[:, :, 0:2] = sigmoid(y[:, :, 0:2])
    y[:, :, 4:] = sigmoid(y[:, :, 4:])
    return y.reshape(x.shape)


def yolo_decode_ref(out, anchors, mask, classes, netw, neth, thresh):
    _, h, w = out.shape
    o = out.reshape(len(mask), classes + 5, h, w).astype(np.float64)
    boxes, objs, probs = [], [], []
    for j in range(h):
        for i in range(w):
            for a, m in enumerate(mask):
                obj = o[a, 4, j, i]
                if obj <= thresh:
                    continue
                boxes.append([(i + o[a, 0, j, i]) / w, (j + o[a, 1, j, i]) / h,
                              np.exp(o[a, 2, j, i]) * anchors[2 * m] / netw,
                              np.exp(o[a, 3, j, i]) * anchors[2 * m + 1] / neth])
                p = obj * o[a, 5:, j, i]
                probs.append(np.where(p > thresh, p, 0))
                objs.append(obj)
    return np.array(boxes).reshape(-1, 4), np.array(objs), np.array(probs).reshape(-1, classes)


def correct_ref(boxes, w, h, netw, neth, letterbox=True, relative=False):
    """Darknet's correct_yolo_boxes (letterbox=0: the input was resized)."""
    new_w, new_h = netw, neth
    if letterbox:
        if netw / w < neth / h:
            new_w, new_h = netw, h * netw // w
        else:
            new_w, new_h = w * neth // h, neth
    b = np.array(boxes, np.float64).reshape(-1, 4).copy()
    b[:, 0] = (b[:, 0] - (netw - new_w) / 2 / netw) / (new_w / netw)
    b[:, 1] = (b[:, 1] - (neth - new_h) / 2 / neth) / (new_h / neth)
    b[:, 2] *= netw / new_w
    b[:, 3] *= neth / new_h
    if not relative:
        b *= [w, h, w, h]
    return b


def detections(net, b, w, h, thresh, letterbox=True, relative=False):
    """Decoded detections without NMS, sorted by objectness."""
    boxes, obj, probs = net._net.detections(b, w, h, thresh, letterbox, relative, 0)
    order = np.argsort(obj, kind="stable")
    return boxes[order], obj[order], probs[order]


def sort_ref(boxes, obj, probs):
    order = np.argsort(obj, kind="stable")
    return boxes[order], obj[order], probs[order]


def assert_dets_close(got, ref, box_tol=1e-4):
    gb, go, gp = got
    rb, ro, rp = ref
    assert len(go) == len(ro) and len(go) > 0
    np.testing.assert_allclose(go, ro, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gp, rp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gb, rb, rtol=box_tol, atol=box_tol)


REGION = dict(anchors="1.5,2, 0.5,0.75, 3,1", num=3, classes=3, coords=4, softmax=1)
REGION_ANCHORS = [1.5, 2, 0.5, 0.75, 3, 1]

# ------------------------------------------------------------------ [region]


@pytest.mark.parametrize("opts", [dict(softmax=1), dict(softmax=0), dict(softmax=1, background=1)])
def test_region_forward_matches_reference(make_cfg, rng, opts):
    sec = dict(REGION, **opts)
    c = 3 * (4 + 3 + 1)
    cfg = make_cfg({"width": 5, "height": 4, "channels": c}, ("region", sec))
    net = dn.Network(cfg, batch=2)
    x = rng.normal(0, 2, (2, c, 4, 5)).astype(np.float32)
    y = net.forward(x)
    assert y.shape == x.shape
    ref = region_forward_ref(x, 3, 4, 3, bool(sec["softmax"]), bool(opts.get("background")))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    if sec["softmax"]:  # the classes of each cell and anchor sum to one
        first = 4 if opts.get("background") else 5
        s = y.reshape(2, 3, 8, 4, 5)[:, :, first:].sum(axis=2)
        np.testing.assert_allclose(s, 1, rtol=1e-5)


def test_region_after_convolution(make_cfg, rng):
    """[convolutional] 1x1 linear -> [region] on a non-square grid."""
    cfg = make_cfg({"width": 6, "height": 3, "channels": 3},
                   ("convolutional", dict(size=1, stride=1, filters=24, activation="linear")),
                   ("region", REGION))
    net = dn.Network(cfg, seed=3)
    x = rng.random((1, 3, 3, 6), dtype=np.float32)
    y = net.forward(x)
    conv = net.layer_output(0)
    np.testing.assert_allclose(y, region_forward_ref(conv, 3, 4, 3), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("img", [(100, 50), (333, 500), (13, 13)])
@pytest.mark.parametrize("letterbox,relative", [(True, False), (False, False), (True, True)])
def test_region_decode_matches_reference(make_cfg, rng, img, letterbox, relative):
    c = 24
    cfg = make_cfg({"width": 5, "height": 4, "channels": c}, ("region", REGION))
    net = dn.Network(cfg, batch=2)
    x = rng.normal(0, 1.5, (2, c, 4, 5)).astype(np.float32)
    y = net.forward(x)
    thresh = 0.3
    got = detections(net, 1, img[0], img[1], thresh, letterbox, relative)
    boxes, obj, probs = region_decode_ref(y[1], REGION_ANCHORS, 3, 4, 3, thresh)
    boxes = correct_ref(boxes, img[0], img[1], 5, 4, letterbox, relative)
    assert_dets_close(got, sort_ref(boxes, obj, probs))
    # image 0 of the batch decodes from its own output
    boxes, obj, probs = region_decode_ref(y[0], REGION_ANCHORS, 3, 4, 3, thresh)
    boxes = correct_ref(boxes, img[0], img[1], 5, 4, letterbox, relative)
    assert_dets_close(detections(net, 0, img[0], img[1], thresh, letterbox, relative),
                      sort_ref(boxes, obj, probs))


def test_region_background_keeps_every_box(make_cfg, rng):
    cfg = make_cfg({"width": 2, "height": 2, "channels": 24}, ("region", dict(REGION, background=1)))
    net = dn.Network(cfg)
    y = net.forward(rng.normal(0, 1, (1, 24, 2, 2)).astype(np.float32))
    got = detections(net, 0, 2, 2, 0.2, letterbox=False, relative=True)
    ref = region_decode_ref(y[0], REGION_ANCHORS, 3, 4, 3, 0.2, background=True)
    assert len(got[1]) == 12 and np.all(got[1] == 1)
    assert_dets_close(got, sort_ref(*ref))


def test_region_errors_name_file_and_line(make_cfg):
    cfg = make_cfg("[net]\nwidth=4\nheight=4\nchannels=20\n\n[region]\nnum=3\nclasses=3\nanchors=1,1,2,2,3,3\n")
    with pytest.raises(dn.CfgParseError) as e:
        dn.Network(cfg)
    msg = str(e.value)
    assert f"{cfg}:6" in msg and "filters=20" in msg and "num*(classes+coords+1)=24" in msg
    cfg = make_cfg("[net]\nwidth=4\nheight=4\nchannels=24\n\n[region]\nnum=3\nclasses=3\nanchors=1,1,2,2\n")
    with pytest.raises(dn.CfgParseError, match=rf"{cfg}:9: .*anchors has 4 numbers, need 2\*num=6"):
        dn.Network(cfg)
    cfg = make_cfg("[net]\nwidth=4\nheight=4\nchannels=24\n\n[region]\nnum=3\nclasses=3\ntree=data/9k.tree\n")
    with pytest.raises(dn.DarknetError, match=rf"{cfg}:9: .*tree"):
        dn.Network(cfg)


def test_region_reads_every_option(make_cfg, capfd):
    """A yolov2-voc style section warns about nothing (all options are read)."""
    text = """[net]
width=13
height=13
channels=125

[region]
anchors =  1.3221, 1.73145, 3.19275, 4.00944, 5.05587, 8.09892, 9.47112, 4.84053, 11.2364, 10.0071
bias_match=1
classes=20
coords=4
num=5
softmax=1
jitter=.3
rescore=1
object_scale=5
noobject_scale=1
class_scale=1
coord_scale=1
absolute=1
thresh = .6
random=1
max=30
log=0
"""
    dn.Network(make_cfg(text))
    assert "unused" not in capfd.readouterr().err
    dn.Network(make_cfg(text + "bogus=1\n"))  # the check can fail
    assert "unused option 'bogus" in capfd.readouterr().err


# -------------------------------------------------------------------- [yolo]

YOLO_ANCHORS = [10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319]


def yolo_section(mask, classes=2):
    return dict(mask=",".join(map(str, mask)), anchors=",".join(map(str, YOLO_ANCHORS)),
                classes=classes, num=6, jitter=.3, ignore_thresh=.7, truth_thresh=1, random=1)


def test_yolo_forward_and_decode_match_reference(make_cfg, rng, capfd):
    mask, classes = [3, 4, 5], 2
    c = len(mask) * (classes + 5)
    cfg = make_cfg({"width": 64, "height": 32, "channels": 3},
                   ("convolutional", dict(size=1, stride=1, filters=c, activation="linear")),
                   ("yolo", yolo_section(mask)))
    net = dn.Network(cfg)
    assert "unused" not in capfd.readouterr().err  # every yolov3 option is read
    # identity 1x1 convolution is not possible from 3 channels; feed the yolo
    # layer through the conv with random weights and use its output instead
    x = rng.random((1, 3, 32, 64), dtype=np.float32)
    y = net.forward(x)
    conv = net.layer_output(0)
    np.testing.assert_allclose(y, yolo_forward_ref(conv, 3, classes), rtol=1e-5, atol=1e-6)
    for img, lb, rel in [((640, 480), True, False), ((200, 300), True, True), ((50, 70), False, False)]:
        got = detections(net, 0, img[0], img[1], 0.4, lb, rel)
        b, o, p = yolo_decode_ref(y[0], YOLO_ANCHORS, mask, classes, 64, 32, 0.4)
        assert_dets_close(got, sort_ref(correct_ref(b, img[0], img[1], 64, 32, lb, rel), o, p))


def test_yolo_forward_many_classes_two_images(make_cfg, rng):
    """The forward runs in items of 8 entries per image and anchor (threads):
    25 entries (a part block), two images, 1 and 2 threads."""
    mask, classes = [0, 1, 2], 20
    c = len(mask) * (classes + 5)
    cfg = make_cfg({"width": 48, "height": 32, "channels": 3},
                   ("convolutional", dict(size=1, stride=1, filters=c, activation="linear")),
                   ("yolo", yolo_section(mask, classes=classes)))
    x = rng.random((2, 3, 32, 48), dtype=np.float32)
    for threads in (1, 2):
        net = dn.Network(cfg, batch=2, threads=threads)
        y = net.forward(x)
        np.testing.assert_allclose(y, yolo_forward_ref(net.layer_output(0), 3, classes), rtol=1e-5, atol=1e-6)


def test_yolo_default_mask_is_all_anchors(make_cfg, rng):
    cfg = make_cfg({"width": 3, "height": 3, "channels": 2 * 6},
                   ("yolo", dict(anchors="4,5, 6,7", num=2, classes=1)))
    net = dn.Network(cfg)
    x = rng.normal(0, 1, (1, 12, 3, 3)).astype(np.float32)
    y = net.forward(x)
    np.testing.assert_allclose(y, yolo_forward_ref(x, 2, 1), rtol=1e-5, atol=1e-6)
    got = detections(net, 0, 3, 3, 0.1, letterbox=False, relative=True)
    ref = yolo_decode_ref(y[0], [4, 5, 6, 7], [0, 1], 1, 3, 3, 0.1)
    assert_dets_close(got, sort_ref(*ref))


def test_two_yolo_layers_are_collected(make_cfg, rng):
    """conv -> yolo -> conv -> yolo: detections of both heads, each with its mask."""
    classes = 1
    cfg = make_cfg({"width": 8, "height": 8, "channels": 3},
                   ("convolutional", dict(size=1, stride=1, filters=12, activation="linear")),
                   ("yolo", yolo_section([4, 5], classes)),
                   ("convolutional", dict(size=3, stride=2, pad=1, filters=18, activation="linear")),
                   ("yolo", yolo_section([0, 1, 2], classes)))
    net = dn.Network(cfg, seed=5)
    net.forward(rng.random((1, 3, 8, 8), dtype=np.float32))
    y1, y3 = net.layer_output(1)[0], net.layer_output(3)[0]
    assert y3.shape == (18, 4, 4)
    parts = [yolo_decode_ref(y1, YOLO_ANCHORS, [4, 5], classes, 8, 8, 0.3),
             yolo_decode_ref(y3, YOLO_ANCHORS, [0, 1, 2], classes, 8, 8, 0.3)]
    assert len(parts[0][1]) > 0 and len(parts[1][1]) > 0
    boxes = correct_ref(np.concatenate([p[0] for p in parts]), 80, 60, 8, 8)
    ref = sort_ref(boxes, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]))
    assert_dets_close(detections(net, 0, 80, 60, 0.3), ref)


@pytest.mark.parametrize("sec,what", [
    (dict(mask="0,1", anchors="1,2,3,4", num=2, classes=2), r"len\(mask\)\*\(classes\+5\)=14"),
    (dict(mask="0,2", anchors="1,2,3,4", num=2, classes=1), "mask index 2 is outside the num=2"),
    (dict(mask="0,1", anchors="1,2,3", num=2, classes=1), r"anchors has 3 numbers, need 2\*num=4"),
])
def test_yolo_errors(make_cfg, sec, what):
    cfg = make_cfg({"width": 4, "height": 4, "channels": 12}, ("yolo", sec))
    with pytest.raises(dn.CfgParseError, match=what) as e:
        dn.Network(cfg)
    assert cfg in str(e.value)


# --------------------------------------------------------------- [detection]


def detection_decode_ref(out, side, num, classes, sqrt, thresh):
    cells = side * side
    cls = out[:cells * classes].reshape(cells, classes).astype(np.float64)
    conf = out[cells * classes:cells * (classes + num)].reshape(cells, num).astype(np.float64)
    bx = out[cells * (classes + num):].reshape(cells, num, 4).astype(np.float64)
    boxes, objs, probs = [], [], []
    for i in range(cells):
        row, col = divmod(i, side)
        for n in range(num):
            p = conf[i, n] * cls[i]
            if conf[i, n] <= thresh and not np.any(p > thresh):
                continue
            e = 2 if sqrt else 1
            boxes.append([(bx[i, n, 0] + col) / side, (bx[i, n, 1] + row) / side,
                          bx[i, n, 2] ** e, bx[i, n, 3] ** e])
            objs.append(conf[i, n])
            probs.append(np.where(p > thresh, p, 0))
    return np.array(boxes), np.array(objs), np.array(probs)


@pytest.mark.parametrize("use_softmax,sqrt", [(1, 1), (0, 0)])
def test_detection_layer(make_cfg, rng, capfd, use_softmax, sqrt):
    side, num, classes = 3, 2, 4
    n = side * side * ((1 + 4) * num + classes)
    cfg = make_cfg({"width": 1, "height": 1, "channels": n},
                   ("detection", dict(classes=classes, coords=4, rescore=1, side=side, num=num,
                                      softmax=use_softmax, sqrt=sqrt, jitter=.2, object_scale=1,
                                      noobject_scale=.5, class_scale=1, coord_scale=5)))
    net = dn.Network(cfg)
    assert "unused" not in capfd.readouterr().err  # every yolov1 option is read
    x = rng.random((1, n, 1, 1), dtype=np.float32)
    y = net.forward(x)[0, :, 0, 0]
    ref = x[0, :, 0, 0].astype(np.float64).copy()
    if use_softmax:
        ref[:side * side * classes] = softmax(ref[:side * side * classes].reshape(-1, classes), 1).ravel()
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-7)
    got = detections(net, 0, 120, 90, 0.2, letterbox=False)
    b, o, p = detection_decode_ref(y, side, num, classes, sqrt, 0.2)
    assert_dets_close(got, sort_ref(correct_ref(b, 120, 90, 1, 1, False), o, p))


def test_detection_layer_input_size_error(make_cfg):
    cfg = make_cfg({"width": 1, "height": 1, "channels": 100},
                   ("detection", dict(classes=2, coords=4, side=2, num=1)))
    with pytest.raises(dn.CfgParseError, match=r"side\*side\*\(\(1\+coords\)\*num\+classes\)=28") as e:
        dn.Network(cfg)
    assert cfg in str(e.value)


def test_no_detector_layer_is_an_error(make_cfg):
    cfg = make_cfg({"width": 2, "height": 2, "channels": 1},
                   ("convolutional", dict(size=1, stride=1, filters=2, activation="linear")))
    net = dn.Network(cfg)
    net.forward(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(dn.DarknetError, match="no \\[region\\], \\[yolo\\] or \\[detection\\]"):
        net._net.detections(0, 10, 10, 0.5, True, False, 0.45)


# ------------------------------------------------------------ box correction


def one_box_yolo(make_cfg, net_wh, cells):
    """A 1-anchor 1-class [yolo] directly on a net_wh input with anchor
    104 x 78 pixels; cells: {(col, row): (tx, ty)}, objectness ~1 there."""
    w, h = net_wh
    cfg = make_cfg({"width": w, "height": h, "channels": 6},
                   ("yolo", dict(mask="0", anchors="104,78", num=1, classes=1)))
    net = dn.Network(cfg)
    x = np.zeros((1, 6, h, w), np.float32)
    x[0, 4] = -30
    for (i, j), (tx, ty) in cells.items():
        x[0, 0, j, i], x[0, 1, j, i], x[0, 4, j, i], x[0, 5, j, i] = tx, ty, 30, 30
    net.forward(x)
    return net


def test_correct_boxes_landscape_letterbox(make_cfg):
    """640x480 letterboxed into 416x416: content is 416x312 with 52 rows of
    padding above. Net centre -> image centre; content corners -> image corners."""
    net = one_box_yolo(make_cfg, (416, 416), {(207, 207): (30, 30), (0, 52): (-30, -30),
                                              (415, 363): (30, 30)})
    boxes, obj, probs = net._net.detections(0, 640, 480, 0.5, True, False, 0)
    got = {(round(float(b[0])), round(float(b[1]))): b for b in boxes}
    assert len(boxes) == 3 and np.allclose(obj, 1) and np.allclose(probs, 1)
    # anchor 104x78 px in a 416 net: 0.25 x 0.1875 of the input; the content
    # is 312/416 = 0.75 of the height, so 0.25 of the image: 160 x 120 px
    np.testing.assert_allclose(got[(320, 240)], [320, 240, 160, 120], atol=1e-3)
    np.testing.assert_allclose(got[(0, 0)][:2], [0, 0], atol=1e-3)
    np.testing.assert_allclose(got[(640, 480)][:2], [640, 480], atol=1e-3)
    rel, _, _ = net._net.detections(0, 640, 480, 0.5, True, True, 0)
    r = rel[np.argmin(np.abs(rel[:, 0] - 0.5) + np.abs(rel[:, 1] - 0.5))]
    np.testing.assert_allclose(r, [0.5, 0.5, 0.25, 0.25], atol=1e-6)
    # resized instead of letterboxed: relative boxes just scale
    plain, _, _ = net._net.detections(0, 640, 480, 0.5, False, False, 0)
    p = plain[np.argmin(np.abs(plain[:, 0] - 320) + np.abs(plain[:, 1] - 240))]
    np.testing.assert_allclose(p, [320, 240, 0.25 * 640, 0.1875 * 480], atol=1e-3)


def test_correct_boxes_portrait_letterbox(make_cfg):
    """480x640 into 416x416: content 312 wide, 52 columns of padding left."""
    net = one_box_yolo(make_cfg, (416, 416), {(52, 0): (-30, -30), (207, 207): (30, 30)})
    boxes, _, _ = net._net.detections(0, 480, 640, 0.5, True, False, 0)
    boxes = boxes[np.argsort(boxes[:, 0])]
    np.testing.assert_allclose(boxes[0][:2], [0, 0], atol=1e-3)
    # width: 104/416 of the net is 104/312 of the content = 160 px of 480;
    # height: 78/416 of 640 = 120 px
    np.testing.assert_allclose(boxes[1], [240, 320, 160, 120], atol=1e-3)


def test_correct_boxes_integer_division(make_cfg):
    """333x500 into 64x64: new_w = 333*64//500 = 42 (not 42.6), padding 11."""
    net = one_box_yolo(make_cfg, (64, 64), {(11, 0): (-30, -30), (52, 63): (30, 30)})
    boxes, _, _ = net._net.detections(0, 333, 500, 0.5, True, False, 0)
    boxes = boxes[np.argsort(boxes[:, 0])]
    np.testing.assert_allclose(boxes[0][0], 0, atol=1e-3)
    np.testing.assert_allclose(boxes[1][:2], [(53 / 64 - 11 / 64) / (42 / 64) * 333, 500], atol=1e-3)
    np.testing.assert_allclose(boxes[1][2], 104 / 42 * 333, rtol=1e-5)


# ------------------------------------------------------------- IoU and NMS

LIB = DARKNET_LIB


@pytest.fixture(scope="module")
def lib():
    if not os.path.exists(LIB):
        pytest.skip("libdarknet.so is not built (run make)")
    lib = ctypes.CDLL(LIB)
    lib.dn_box_iou.restype = ctypes.c_float
    lib.dn_box_iou.argtypes = [Box, Box]
    lib.dn_nms_sort.argtypes = [ctypes.POINTER(Dets), ctypes.c_float]
    return lib


def test_box_iou_by_hand(lib):
    iou = lambda a, b: lib.dn_box_iou(Box(*a), Box(*b))
    assert iou((1, 1, 2, 2), (1, 1, 2, 2)) == 1.0
    assert iou((1, 1, 2, 2), (1, 2, 2, 4)) == 0.5          # inside: 4 / 8
    assert iou((0, 0, 2, 2), (1, 1, 2, 2)) == pytest.approx(1 / 7)  # 1 / (4 + 4 - 1)
    assert iou((0, 0, 2, 2), (2, 0, 2, 2)) == 0.0          # touching edges
    assert iou((0, 0, 2, 2), (5, 5, 2, 2)) == 0.0          # apart
    assert iou((0, 0, 2, 2), (0, 3, 2, 2)) == 0.0          # apart in y only
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0          # zero union
    assert iou((0, 0, 4, 2), (1, 0, 2, 4)) == pytest.approx(4 / 12)  # cross: 2x2 of 8+8-4


def run_nms(lib, boxes, objs, probs, thresh):
    """Returns probs after dn_nms_sort, rows in the input order."""
    d, arr, probs, base = c_detections(boxes, objs, probs)
    n, classes = probs.shape
    lib.dn_nms_sort(ctypes.byref(d), thresh)
    order = [(ctypes.cast(arr[i].prob, ctypes.c_void_p).value - base) // (4 * classes) for i in range(n)]
    assert sorted(order) == list(range(n))
    return probs, order


def test_nms_same_class_overlap_suppresses_lower(lib):
    boxes = [(1, 1, 2, 2), (1, 2, 2, 4)]  # IoU 0.5
    probs, order = run_nms(lib, boxes, [1, 1], [[0.6], [0.9]], 0.45)
    assert probs.tolist() == [[0], [pytest.approx(0.9)]]
    assert order == [1, 0]  # sorted by prob of the (last) class


def test_nms_different_classes_are_kept(lib):
    boxes = [(1, 1, 2, 2), (1, 1, 2, 2)]
    probs, _ = run_nms(lib, boxes, [1, 1], [[0.6, 0], [0, 0.9]], 0.45)
    np.testing.assert_allclose(probs, [[0.6, 0], [0, 0.9]])
    # per class: class 0 suppressed, class 1 kept on the same pair
    probs, _ = run_nms(lib, boxes, [1, 1], [[0.6, 0.3], [0.7, 0.2]], 0.45)
    np.testing.assert_allclose(probs, [[0, 0.3], [0.7, 0]])


def test_nms_threshold_boundary(lib):
    boxes = [(1, 1, 2, 2), (1, 2, 2, 4)]  # IoU exactly 0.5
    probs, _ = run_nms(lib, boxes, [1, 1], [[0.9], [0.8]], 0.5)  # not > thresh: kept
    np.testing.assert_allclose(probs, [[0.9], [0.8]])
    probs, _ = run_nms(lib, boxes, [1, 1], [[0.9], [0.8]], 0.499)
    np.testing.assert_allclose(probs, [[0.9], [0]])


def test_nms_suppressed_boxes_do_not_suppress(lib):
    """A suppresses B; C overlaps only B, so it survives (Darknet skips zeros)."""
    boxes = [(0, 0, 2, 2), (0.5, 0, 2, 2), (1.5, 0, 2, 2)]  # IoU(A,B)=.6, (B,C)=1/3, (A,C)=1/7
    probs, _ = run_nms(lib, boxes, [1, 1, 1], [[0.9], [0.8], [0.7]], 0.3)
    np.testing.assert_allclose(probs, [[0.9], [0], [0.7]])


def test_nms_ignores_zero_objectness(lib):
    """Objectness 0 goes to the end: it neither suppresses nor is suppressed."""
    boxes = [(1, 1, 2, 2), (1, 1, 2, 2), (1, 1, 2, 2)]
    probs, order = run_nms(lib, boxes, [0, 1, 1], [[0.95], [0.5], [0.7]], 0.45)
    np.testing.assert_allclose(probs, [[0.95], [0], [0.7]])
    assert order[-1] == 0


def darknet_nms_sort(boxes, objs, probs, thresh):
    """Darknet's do_nms_sort in NumPy: zero objectness to the end, then per
    class a full sort (ties: decode order) and every pair compared."""
    probs = np.array(probs, np.float32)
    order = list(range(len(objs)))
    total = len(order)
    i = 0
    while i < total:
        if objs[order[i]] == 0:
            total -= 1
            order[i], order[total] = order[total], order[i]
        else:
            i += 1

    def iou(a, b):
        a = np.float32(a)
        b = np.float32(b)
        def overlap(x1, w1, x2, w2):
            l1, l2 = x1 - w1 / np.float32(2), x2 - w2 / np.float32(2)
            r1, r2 = x1 + w1 / np.float32(2), x2 + w2 / np.float32(2)
            return min(r1, r2) - max(l1, l2)
        w, h = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
        inter = np.float32(0) if w < 0 or h < 0 else w * h
        union = a[2] * a[3] + b[2] * b[3] - inter
        return inter / union if union > 0 else 0

    for k in range(probs.shape[1]):
        head = sorted(order[:total], key=lambda r: (-probs[r, k], r))
        order[:total] = head
        for a in range(total):
            if probs[head[a], k] == 0:
                continue
            for b in range(a + 1, total):
                if iou(boxes[head[a]], boxes[head[b]]) > thresh:
                    probs[head[b], k] = 0
    return probs, order


@pytest.mark.parametrize("seed", range(6))
def test_nms_equals_darknet_reference(lib, seed):
    """Random boxes in clusters, sparse and tied probabilities, zero
    objectness: the same probabilities and the same final order as Darknet's
    all-pairs do_nms_sort."""
    rng = np.random.default_rng(seed)
    n, classes = int(rng.integers(1, 60)), int(rng.integers(1, 6))
    centres = rng.uniform(0, 100, (4, 2))
    xy = centres[rng.integers(0, 4, n)] + rng.normal(0, 6, (n, 2))
    boxes = np.c_[xy, rng.uniform(5, 30, (n, 2))].astype(np.float32)
    probs = rng.choice([0, 0, 0.25, 0.5, 0.7], (n, classes)) * (rng.random((n, classes)) < 0.7)
    probs = np.where(rng.random((n, classes)) < 0.5, probs, rng.random((n, classes))).astype(np.float32)
    objs = (rng.random(n) > 0.15).astype(np.float32)
    want, want_order = darknet_nms_sort(boxes, objs, probs, 0.45)
    got, got_order = run_nms(lib, [tuple(map(float, b)) for b in boxes], objs.tolist(), probs, 0.45)
    np.testing.assert_array_equal(got, want)
    assert got_order[:int(objs.sum())] == want_order[:int(objs.sum())]


def test_nms_through_decoding(make_cfg):
    """Two anchors of one cell predict nearly the same box: NMS keeps one."""
    cfg = make_cfg({"width": 1, "height": 1, "channels": 12},
                   ("yolo", dict(mask="0,1", anchors="10,10, 11,10", num=2, classes=1)))
    net = dn.Network(cfg)
    x = np.zeros((1, 12, 1, 1), np.float32)
    x[0, [4, 5], 0, 0] = 3      # anchor 0: objectness and class sigmoid(3)
    x[0, [10, 11], 0, 0] = 2    # anchor 1: sigmoid(2)
    net.forward(x)
    _, _, probs = net._net.detections(0, 10, 10, 0.25, True, False, 0)
    assert np.count_nonzero(probs) == 2
    _, _, probs = net._net.detections(0, 10, 10, 0.25, True, False, 0.45)
    assert np.count_nonzero(probs) == 1
    assert probs.max() == pytest.approx(sigmoid(3) ** 2, rel=1e-5)


# -------------------------------------------------------------- net.detect


TINY_REGION = dict(anchors="4,6, 2,2", num=2, classes=2, coords=4, softmax=1)


def tiny_region_cfg(make_cfg):
    return make_cfg({"width": 32, "height": 32, "channels": 3},
                    ("convolutional", dict(size=1, stride=1, filters=14, activation="linear")),
                    ("region", TINY_REGION))


def test_detect_smoke_random_weights(make_cfg, rng):
    net = dn.Network(tiny_region_cfg(make_cfg), seed=1)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    out = net.detect(img, thresh=0.2)
    assert isinstance(out, list)
    for d in out:
        assert isinstance(d, dn.Detection) and 0.2 < d.confidence <= 1 and d.class_id in (0, 1)
        l, t, r, b = d.box
        assert 0 <= l and r <= 49 and 0 <= t and b <= 39
    assert [d.confidence for d in out] == sorted((d.confidence for d in out), reverse=True)


def test_detect_hand_set_weights_finds_the_one_box(make_cfg):
    """Conv weights zero except: objectness of anchor 0 = 20*red - 10 and the
    class-1 score of anchor 0 = 10*red. One red pixel at (row 5, col 7) of a
    32x32 image (letterboxing is the identity) -> one box there, class 1."""
    net = dn.Network(tiny_region_cfg(make_cfg))
    p = net.params(0)
    p["weights"][:] = 0
    p["biases"][:] = 0
    w = p["weights"].reshape(14, 3)
    p["biases"][4] = -10        # anchor 0 objectness
    w[4, 0] = 20
    w[6, 0] = 10                # anchor 0, class 1
    p["biases"][7 + 4] = -10    # anchor 1 objectness: never
    img = np.zeros((32, 32, 3), np.uint8)
    img[5, 7, 0] = 255
    out = net.detect(img, thresh=0.25)
    assert len(out) == 1
    d = out[0]
    conf = sigmoid(10) * softmax([0, 10], 0)[1]
    assert d.class_id == 1 and d.confidence == pytest.approx(conf, rel=1e-5)
    # centre (7.5, 5.5) px, anchor 4 x 6 cells of 1 px
    np.testing.assert_allclose(d.box, (5.5, 2.5, 9.5, 8.5), atol=1e-4)
    # a larger image of the same content scales the box with it
    big = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)
    out2 = net.detect(big, thresh=0.25)
    assert len(out2) >= 1 and out2[0].class_id == 1
    np.testing.assert_allclose(out2[0].xywh[2:], (8, 12), atol=1e-3)


@pytest.mark.parametrize("path", [os.path.join(REF_CFG, "yolov2-tiny-voc.cfg"),
                                  os.path.join(REF_CFG, "yolov3-tiny.cfg"),
                                  os.path.join(REF_CFG, "yolov1-tiny.cfg"),
                                  os.path.join(SEED_CFG, "yolov3-tiny-voc.cfg")])
def test_reference_cfgs_detector_sections(path, capfd):
    """Darknet's own cfgs build with their detector heads and no unused
    detector options (skips while other layers are not implemented)."""
    if not os.path.exists(path):
        pytest.skip(f"{path} not available")
    try:
        net = dn.Network(path, batch=1)
    except dn.errors.DarknetUnsupportedError as e:
        pytest.skip(f"a layer is not implemented yet: {e}")
    err = capfd.readouterr().err
    assert not [l for l in err.splitlines() if "unused" in l and
                any(k in l for k in ("[region]", "[yolo]", "[detection]"))], err
    heads = [l for l in net.layers if l["type"] in ("region", "yolo", "detection")]
    assert heads and net.layers[-1]["type"] == heads[-1]["type"]
    for l in heads:
        assert l["output_shape"] == l["input_shape"]
