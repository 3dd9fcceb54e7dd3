"""ONNX export (csrc/export/onnx.c; darknet_py.export_onnx, Network.export_onnx,
`python -m darknet_py export`, `./darknet export onnx`).

Each case loads a network, gives it random weights with random batch-norm
statistics and biases (so the folding is exercised; deep cfgs get their
statistics re-estimated first, so their activations stay near unit scale),
runs the project's forward on a random input, exports, runs the file in ONNX
Runtime and compares every output with Network.layer_output of its layer:
max |onnx - ours| / max |ours| below 1e-4 at every head. Small cfgs cover
each layer type and option (every activation, groups and depthwise, each
maxpool padding case, route groups, shortcut across shapes, upsample and its
reverse, reorg both ways, connected with batch norm, softmax with groups and
temperature, dropout, yolo with scale_x_y and new_coords, region with
softmax/background, detection); then the project's cfgs, AlexeyAB's
yolov4-tiny, fully ternary models (per layer and per filter, and from a
packed .tpk file), yolo-fastest-voc with its trained weights (skipped without
../shared), decode=True's boxes/objectness/scores against
Network.detections, OpenCV's ONNX reader, the three faces writing the same
bytes, and the errors (unwritable path, a layer that cannot be exported, the
file left untouched)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import DARKNET_BIN, ROOT, SHARED, rel_err, run_darknet

dn = pytest.importorskip("darknet_py")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from darknet_py import ternary  # noqa: E402
from darknet_py.cfgfile import read_cfg, write_cfg  # noqa: E402
from darknet_py.errors import (DarknetIOError, DarknetUnsupportedError,  # noqa: E402
                               DarknetValueError)

TOL = 1e-4
CFG = os.path.join(ROOT, "cfg")
ALEXEYAB = os.path.join(SHARED, "reference", "alexeyab-cfg")
FASTEST = os.path.join(SHARED, "models", "yolo-fastest")


def randomize(net, rng, recalibrate=False):
    """Random biases and batch-norm statistics (recalibrate: statistics of
    one random image first, then scaled at random)."""
    if recalibrate:
        net._net.bn_recalibrate(rng.random(net.input_shape, dtype=np.float32))
    for i in range(len(net.layers)):
        p = net.params(i)
        if "scales" in p:
            p["scales"][:] = rng.uniform(.5, 1.5, p["scales"].shape)
        if "rolling_variance" in p and not recalibrate:
            p["rolling_variance"][:] = rng.uniform(.5, 2, p["rolling_variance"].shape)
            p["rolling_mean"][:] = rng.normal(0, .2, p["rolling_mean"].shape)
        if "biases" in p:
            p["biases"][:] += rng.normal(0, .1, p["biases"].shape).astype(np.float32)


DECODED = ("boxes", "objectness", "scores")  # decode=True's outputs


def layer_of(name, net):
    return len(net.layers) - 1 if name == "output" else int(name.rsplit("_", 1)[1])


def compare(net, path, x, check_model=True):
    """Run path in ONNX Runtime on x; {output name: relative error vs layer_output}."""
    if check_model:
        onnx.checker.check_model(onnx.load(path), full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    names = [o.name for o in sess.get_outputs() if o.name not in DECODED]
    errs = {}
    for name, out in zip(names, sess.run(names, {"input": x})):
        ref = net.layer_output(layer_of(name, net))
        assert out.shape == ref.shape, name
        errs[name] = rel_err(out, ref)
    return errs


def roundtrip(net, tmp_path, rng, opset=13, name="m.onnx"):
    x = rng.random(net.input_shape, dtype=np.float32)
    net.forward(x)
    path = str(tmp_path / name)
    assert net.export_onnx(path, opset=opset) == path
    return compare(net, path, x)


def expect_close(errs, heads=None, record=None):
    assert errs, "no outputs"
    if heads is not None:
        assert sorted(errs) == sorted(heads)
    if record:
        record("max_rel_err", max(errs.values()))
    bad = {k: v for k, v in errs.items() if not v < TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"


def small_net(make_cfg, text, batch=1):
    return dn.Network(make_cfg(text), batch=batch)


NET = "[net]\nwidth={w}\nheight={h}\nchannels=3\n"


def conv(filters, size=3, stride=1, pad=1, act="leaky", bn=1, extra=""):
    return (f"\n[convolutional]\nbatch_normalize={bn}\nfilters={filters}\nsize={size}\nstride={stride}\n"
            f"pad={pad}\nactivation={act}\n{extra}")


# ---------------------------------------------------------------- each layer type and option

ACTIVATIONS = ["linear", "leaky", "logistic", "relu", "relie", "ramp", "tanh", "swish", "mish"]


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_activations_in_conv_shortcut_connected(make_cfg, rng, tmp_path, act):
    text = (NET.format(w=12, h=10) + conv(6, act=act) + conv(6, act="linear", bn=0)
            + f"\n[shortcut]\nfrom=-2\nactivation={act}\n"
            + f"\n[connected]\noutput=7\nactivation={act}\n")
    net = small_net(make_cfg, text)
    randomize(net, rng)
    # spread the inputs so every activation sees both signs and its large-|x| branches
    net.params(0)["weights"][:] *= 4
    expect_close(roundtrip(net, tmp_path, rng), ["output"])


def test_conv_groups_depthwise_stride_padding(make_cfg, rng, tmp_path):
    text = (NET.format(w=17, h=15) + conv(8) + conv(6, extra="groups=2\n") + conv(6, extra="groups=6\n")
            + conv(6, size=5, stride=2, pad=0, extra="padding=2\ngroups=3\n")
            + conv(10, size=1, stride=1, pad=0) + conv(4, size=3, stride=3, pad=0, bn=0, act="linear"))
    net = small_net(make_cfg, text)
    randomize(net, rng)
    expect_close(roundtrip(net, tmp_path, rng), ["output"])


MAXPOOLS = [  # size, stride, padding (None: Darknet's default size-1), input side
    (2, 2, None, 20), (2, 2, None, 13), (2, 1, None, 13), (3, 1, None, 9), (3, 2, 0, 9),
    (3, 2, 1, 10), (3, 2, 4, 11), (5, 1, None, 8), (13, 1, None, 13), (4, 3, 5, 14), (1, 1, None, 5),
]


@pytest.mark.parametrize("size,stride,padding,side", MAXPOOLS)
def test_maxpool_padding_cases(make_cfg, rng, tmp_path, size, stride, padding, side):
    pad = "" if padding is None else f"padding={padding}\n"
    text = NET.format(w=side, h=side + 1) + conv(5, act="linear") + f"\n[maxpool]\nsize={size}\nstride={stride}\n{pad}"
    net = small_net(make_cfg, text)
    randomize(net, rng)
    expect_close(roundtrip(net, tmp_path, rng), ["output"])


def test_avgpool_softmax_dropout_connected(make_cfg, rng, tmp_path):
    text = (NET.format(w=9, h=7) + conv(12) + "\n[dropout]\nprobability=.3\n" + "\n[avgpool]\n"
            + "\n[connected]\noutput=12\nbatch_normalize=1\nactivation=leaky\n"
            + "\n[softmax]\ngroups=3\ntemperature=2.5\n" + "\n[connected]\noutput=6\nactivation=linear\n"
            + "\n[softmax]\n")
    net = small_net(make_cfg, text)
    randomize(net, rng)
    expect_close(roundtrip(net, tmp_path, rng), ["output"])


def test_route_with_groups_and_concat(make_cfg, rng, tmp_path):
    text = (NET.format(w=16, h=16) + conv(8) + "\n[route]\nlayers=-1\ngroups=2\ngroup_id=1\n" + conv(4)
            + conv(4) + "\n[route]\nlayers=-1,-2\n" + conv(8, size=1, pad=0)
            + "\n[route]\nlayers=0,-1\ngroups=4\ngroup_id=2\n" + "\n[route]\nlayers=-2,-1,2\n")
    net = small_net(make_cfg, text)
    randomize(net, rng)
    expect_close(roundtrip(net, tmp_path, rng), ["output"])


@pytest.mark.parametrize("case", ["alpha_beta", "from_larger_more_channels", "from_smaller_fewer_channels"])
def test_shortcut_shapes(make_cfg, rng, tmp_path, case):
    base = NET.format(w=16, h=12) + conv(6)
    if case == "alpha_beta":
        text = base + conv(6) + "\n[shortcut]\nfrom=-2\nalpha=.5\nbeta=2\nactivation=leaky\n"
    elif case == "from_larger_more_channels":  # 16x12x6 added into 8x6x4: stride 2, 4 channels
        text = base + conv(4, stride=2) + "\n[shortcut]\nfrom=-2\nalpha=1.5\nactivation=linear\n"
    else:  # 8x6x3 added into 16x12x6: every other cell, 3 channels
        text = (base + conv(3, stride=2) + "\n[route]\nlayers=0\n"
                + "\n[shortcut]\nfrom=-2\nbeta=.7\nactivation=swish\n")
    net = small_net(make_cfg, text)
    randomize(net, rng)
    expect_close(roundtrip(net, tmp_path, rng), ["output"])


@pytest.mark.parametrize("opts", ["stride=2\nscale=.5", "stride=3", "stride=-2\nscale=2"])
def test_upsample(make_cfg, rng, tmp_path, opts):
    net = small_net(make_cfg, NET.format(w=10, h=8) + conv(5) + f"\n[upsample]\n{opts}\n")
    randomize(net, rng)
    for opset in (11, 13):
        expect_close(roundtrip(net, tmp_path, rng, opset=opset), ["output"])


@pytest.mark.parametrize("reverse", [0, 1])
def test_reorg(make_cfg, rng, tmp_path, reverse):
    text = NET.format(w=12, h=8) + conv(8) + f"\n[reorg]\nstride=2\nreverse={reverse}\n" + conv(5, size=1, pad=0)
    net = small_net(make_cfg, text)
    randomize(net, rng)
    x = rng.random(net.input_shape, dtype=np.float32)
    net.forward(x)
    net.export_onnx(str(tmp_path / "r.onnx"))
    # the reorg layer's own output, not only what the conv after it makes of it
    m = onnx.load(str(tmp_path / "r.onnx"))
    last = [n.output[0] for n in m.graph.node if n.output[0].startswith("l1_")][-1]
    m.graph.output.append(onnx.helper.make_tensor_value_info(last, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    out, reorg = sess.run(["output", last], {"input": x})
    assert rel_err(reorg, net.layer_output(1)) < TOL
    assert rel_err(out, net.layer_output(2)) < TOL


def yolo(mask, classes=3, extra=""):
    return (f"\n[yolo]\nmask={mask}\nanchors=10,14, 23,27, 37,58, 81,82\nclasses={classes}\nnum=4\n{extra}")


@pytest.mark.parametrize("extra,act", [("", "linear"), ("scale_x_y=1.05\n", "linear"),
                                       ("scale_x_y=2.0\nnew_coords=1\n", "logistic")])
def test_yolo_heads(make_cfg, rng, tmp_path, extra, act):
    text = (NET.format(w=32, h=32) + conv(8, stride=2) + conv(16, size=1, pad=0, bn=0, act=act) + yolo("0,1", extra=extra)
            + "\n[route]\nlayers=0\n" + conv(8, size=1, pad=0, bn=0, act=act) + yolo("3", extra=extra))
    net = small_net(make_cfg, text)
    randomize(net, rng)
    net.params(1)["weights"][:] *= 3  # logits well spread through the logistic
    expect_close(roundtrip(net, tmp_path, rng), ["yolo_2", "yolo_5"])


@pytest.mark.parametrize("opts", ["softmax=1", "softmax=0", "softmax=1\nbackground=1", "softmax=0\nbackground=1",
                                  "softmax=1\ncoords=5"])
def test_region(make_cfg, rng, tmp_path, opts):
    coords = 5 if "coords=5" in opts else 4
    filters = 2 * (coords + 4 + 1)
    text = (NET.format(w=24, h=20) + conv(8, stride=2) + conv(filters, size=1, pad=0, bn=0, act="linear")
            + f"\n[region]\nanchors=1,1, 2,3\nclasses=4\nnum=2\n{opts}\n")
    net = small_net(make_cfg, text)
    randomize(net, rng)
    net.params(1)["weights"][:] *= 3
    for opset in (11, 13):
        expect_close(roundtrip(net, tmp_path, rng, opset=opset), ["region_2"])


@pytest.mark.parametrize("softmax", [0, 1])
def test_detection(make_cfg, rng, tmp_path, softmax):
    text = (NET.format(w=16, h=16) + conv(4, stride=2) + "\n[maxpool]\nsize=2\nstride=2\n"
            + "\n[connected]\noutput=52\nactivation=linear\n"
            + f"\n[detection]\nclasses=3\ncoords=4\nnum=2\nside=2\nsoftmax={softmax}\n")
    net = small_net(make_cfg, text)
    randomize(net, rng)
    expect_close(roundtrip(net, tmp_path, rng), ["detection_3"])


def test_batch_two_and_opsets(make_cfg, rng, tmp_path):
    text = NET.format(w=16, h=16) + conv(8, stride=2) + conv(16, size=1, pad=0, bn=0, act="linear") + yolo("0,1")
    net = small_net(make_cfg, text, batch=2)
    randomize(net, rng)
    for opset in (11, 12, 13, 17, 21):
        errs = roundtrip(net, tmp_path, rng, opset=opset)
        expect_close(errs, ["yolo_2"])
    m = onnx.load(str(tmp_path / "m.onnx"))
    assert m.opset_import[0].version == 21
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [2, 3, 16, 16]
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["letterbox"] == "1" and meta["width"] == "16"
    assert "mask=0,1" in meta["yolo_2"] and "anchors=10,14,23,27,37,58,81,82" in meta["yolo_2"]


# ---------------------------------------------------------------- decode=True

DECODE_CASES = {
    "yolo": NET.format(w=32, h=32) + conv(8, stride=2) + conv(16, size=1, pad=0, bn=0, act="linear")
    + yolo("0,1", extra="scale_x_y=1.1\n") + "\n[route]\nlayers=0\n" + conv(8, size=1, pad=0, bn=0, act="linear")
    + yolo("3"),
    "yolo_new_coords": NET.format(w=32, h=24) + conv(8, stride=2) + conv(16, size=1, pad=0, bn=0, act="logistic")
    + yolo("1,2", extra="scale_x_y=2.0\nnew_coords=1\n"),
    "region": NET.format(w=24, h=20) + conv(8, stride=2) + conv(18, size=1, pad=0, bn=0, act="linear")
    + "\n[region]\nanchors=1,1.5, 2,3\nclasses=4\nnum=2\nsoftmax=1\n",
    "region_background": NET.format(w=24, h=20) + conv(8, stride=2) + conv(18, size=1, pad=0, bn=0, act="linear")
    + "\n[region]\nanchors=1,1.5, 2,3\nclasses=4\nnum=2\nsoftmax=1\nbackground=1\n",
    "detection": NET.format(w=16, h=16) + conv(4, stride=2) + "\n[maxpool]\nsize=2\nstride=2\n"
    + "\n[connected]\noutput=52\nactivation=logistic\n"
    + "\n[detection]\nclasses=3\ncoords=4\nnum=2\nside=2\nsoftmax=1\nsqrt=1\n",
}


@pytest.mark.parametrize("case", sorted(DECODE_CASES))
def test_decode_matches_detections(make_cfg, rng, tmp_path, case):
    net = small_net(make_cfg, DECODE_CASES[case], batch=2)
    randomize(net, rng)
    x = rng.random(net.input_shape, dtype=np.float32)
    net.forward(x)
    path = str(tmp_path / "d.onnx")
    net.export_onnx(path, decode=True)
    errs = compare(net, path, x)  # the heads are still there
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    boxes, obj, scores = sess.run(["boxes", "objectness", "scores"], {"input": x})
    _, _, h, w = net.input_shape
    for b in range(2):
        # thresh 0, the network's own size: Darknet's boxes relative to the input, unmoved
        rb, ro, rp = net._net.detections(b, w, h, 0.0, True, True, 0.0)
        keep = obj[b] > 0
        if case == "detection":
            keep |= (scores[b] > 0).any(axis=1)
        assert keep.sum() == len(ro) > 0
        assert rel_err(boxes[b][keep], rb) < TOL
        assert rel_err(obj[b][keep], ro) < TOL
        assert rel_err(np.where(scores[b][keep] > 0, scores[b][keep], 0), rp) < TOL
    expect_close(errs)


def np_nms(boxes, scores, iou, thresh, keep):
    """ONNX NonMaxSuppression (centre boxes), per image and class, greedy by score:
    (batch, class, row) in its order."""
    def corners(b):
        return np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)
    out = []
    for bi in range(boxes.shape[0]):
        c = corners(boxes[bi].astype(np.float64))
        area = (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])
        for k in range(scores.shape[2]):
            s = scores[bi, :, k]
            order = [r for r in np.argsort(-s, kind="stable") if s[r] > thresh]
            kept = []
            for r in order:
                if len(kept) == keep:
                    break
                ok = True
                for q in kept:
                    iw = min(c[r, 2], c[q, 2]) - max(c[r, 0], c[q, 0])
                    ih = min(c[r, 3], c[q, 3]) - max(c[r, 1], c[q, 1])
                    inter = max(iw, 0) * max(ih, 0)
                    if inter / (area[r] + area[q] - inter) > iou:
                        ok = False
                        break
                if ok:
                    kept.append(r)
            out += [(bi, k, r) for r in kept]
    return out


@pytest.mark.parametrize("case", ["yolo", "region"])
def test_nms_output(make_cfg, rng, tmp_path, case):
    """nms=IoU: detections n x 7 (batch, class, score, box) as ONNX's
    NonMaxSuppression selects them from the decoded boxes and scores, against
    a NumPy transcription of its rule."""
    net = small_net(make_cfg, DECODE_CASES[case], batch=2)
    randomize(net, rng)
    x = rng.random(net.input_shape, dtype=np.float32)
    path = str(tmp_path / "n.onnx")
    net.export_onnx(path, nms=0.45, thresh=0.1, max_per_class=5)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    boxes, scores, det = sess.run(["boxes", "scores", "detections"], {"input": x})
    want = np_nms(boxes, scores, 0.45, 0.1, 5)
    assert det.shape == (len(want), 7) and len(want) > 0
    for row, (b, k, r) in zip(det, want):
        assert (row[0], row[1]) == (b, k)
        assert row[2] == scores[b, r, k]
        np.testing.assert_array_equal(row[3:], boxes[b, r])


def test_nms_options_and_errors(make_cfg, tmp_path):
    cfg = make_cfg(DECODE_CASES["yolo"])
    p1, p2 = str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx")
    dn.export_onnx(cfg, None, p1, nms=0.5, thresh=0.3, max_per_class=7)
    r = subprocess.run([sys.executable, "-m", "darknet_py", "export", cfg, "", p2, "--nms", "0.5", "--thresh", "0.3",
                        "--max", "7"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert open(p1, "rb").read() == open(p2, "rb").read()
    assert [o.name for o in onnx.load(p1).graph.output][-1] == "detections"
    for kw, match in ((dict(nms=1.5), r"nms \(an IoU\) must be in \(0, 1\], got 1.5"),
                      (dict(nms=0.5, thresh=2), "thresh must be in"), (dict(nms=0.5, max_per_class=0), "max_per_class")):
        with pytest.raises(dn.DarknetValueError, match=match):
            dn.export_onnx(cfg, None, str(tmp_path / "c.onnx"), **kw)
    assert not os.path.exists(tmp_path / "c.onnx")
    r = subprocess.run([os.path.join(ROOT, "darknet"), "export", "onnx", cfg, "", str(tmp_path / "d.onnx"), "-nms", "0.5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "nms needs decode" in r.stderr


# ---------------------------------------------------------------- whole cfgs

def sized_cfg(src, tmp_path, size, ternary=None, name="net.cfg"):
    """A copy of src at size x size, batch 1; ternary 'layer' or 'filter' makes
    every conv layer ternary with that alpha scope."""
    secs = read_cfg(src)
    for k, v in (("width", size), ("height", size), ("batch", 1), ("subdivisions", 1)):
        secs[0].set(k, v)
    for s in secs:
        if ternary and s.name in ("convolutional", "conv"):
            s.set("ternary", 1)
            s.set("ternary_scale", ternary)
    path = str(tmp_path / name)
    write_cfg(secs, path)
    return path


CFGS = [(os.path.join(CFG, "yolov2-tiny-voc.cfg"), 160, ["region_15"]),
        (os.path.join(CFG, "yolov2-tiny-voc-small.cfg"), 96, None),
        (os.path.join(CFG, "yolov2-tiny-synth.cfg"), 96, None),
        (os.path.join(CFG, "yolov3-tiny-voc.cfg"), 160, ["yolo_16", "yolo_23"]),
        (os.path.join(CFG, "yolov2-voc.cfg"), 96, ["region_31"]),
        (os.path.join(ALEXEYAB, "yolov4-tiny.cfg"), 128, ["yolo_30", "yolo_37"])]


@pytest.mark.parametrize("src,size,heads", CFGS, ids=[os.path.basename(c[0]) for c in CFGS])
def test_project_cfgs(rng, tmp_path, record_property, src, size, heads):
    if not os.path.exists(src):
        pytest.skip(f"{src} not found (../shared absent)")
    net = dn.Network(sized_cfg(src, tmp_path, size))
    randomize(net, rng, recalibrate=True)
    errs = roundtrip(net, tmp_path, rng)
    print(os.path.basename(src), errs)
    expect_close(errs, heads, record_property)


@pytest.mark.parametrize("scope", ["layer", "filter"])
def test_fully_ternary_and_packed(rng, tmp_path, record_property, scope):
    src = os.path.join(CFG, "yolov3-tiny-voc.cfg")
    cfg = sized_cfg(src, tmp_path, 128, ternary=scope)
    net = dn.Network(cfg)
    randomize(net, rng, recalibrate=True)
    weights, packed = str(tmp_path / "t.weights"), str(tmp_path / "t.tpk")
    net.save_weights(weights)
    ternary.pack(cfg, weights, packed)
    x = rng.random(net.input_shape, dtype=np.float32)
    for source in (weights, packed):
        loaded = dn.Network(cfg, source)
        loaded.forward(x)
        path = str(tmp_path / f"{os.path.basename(source)}.onnx")
        loaded.export_onnx(path)
        errs = compare(loaded, path, x)
        print(scope, os.path.basename(source), errs)
        expect_close(errs, ["yolo_16", "yolo_23"], record_property)
    # the weights of every conv are its ternary values: per filter (scope
    # filter) or per layer, at most {-alpha, 0, +alpha}
    m = onnx.load(path)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    assert len(convs) == 13
    for n in convs:
        w = inits[n.input[1]]
        groups = w.reshape(w.shape[0], -1) if scope == "filter" else w.reshape(1, -1)
        for g in groups:
            vals = np.unique(np.abs(g))
            assert len(vals[vals > 0]) <= 1


def test_ternary_int8_kernel_is_refused_float_kernel_exports(rng, tmp_path):
    cfg = sized_cfg(os.path.join(CFG, "yolov3-tiny-voc.cfg"), tmp_path, 96, ternary="layer")
    net = dn.Network(cfg)
    randomize(net, rng, recalibrate=True)
    net.ternary_kernel = "float"
    expect_close(roundtrip(net, tmp_path, rng), ["yolo_16", "yolo_23"])
    target = tmp_path / "kept.onnx"
    target.write_bytes(b"old")
    net.ternary_kernel = "int8"
    with pytest.raises(DarknetUnsupportedError, match=r"layer 0 \[convolutional\].*int8"):
        net.export_onnx(str(target))
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == sorted(["kept.onnx", "m.onnx", "net.cfg"])


def fastest_or_skip(name):
    cfg, weights = os.path.join(FASTEST, name + ".cfg"), os.path.join(FASTEST, name + ".weights")
    if not (os.path.exists(cfg) and os.path.exists(weights)):
        pytest.skip(f"{FASTEST} not found (../shared absent)")
    return cfg, weights


@pytest.mark.parametrize("packed", [False, True])
def test_yolo_fastest_voc_trained(rng, tmp_path, record_property, packed):
    cfg, weights = fastest_or_skip("yolo-fastest-voc")
    if packed:  # its weights, ternarised and packed: a .tpk file as the input
        tcfg = sized_cfg(cfg, tmp_path, 320, ternary="filter")
        tpk = str(tmp_path / "f.tpk")
        ternary.pack(tcfg, weights, tpk)
        cfg, weights = tcfg, tpk
    path = str(tmp_path / "fastest.onnx")
    dn.export_onnx(cfg, weights, path)
    net = dn.Network(cfg, weights)
    x = rng.random(net.input_shape, dtype=np.float32)
    net.forward(x)
    errs = compare(net, path, x)
    print("yolo-fastest-voc", "packed" if packed else "", errs)
    expect_close(errs, ["yolo_115", "yolo_125"], record_property)


# ---------------------------------------------------------------- OpenCV reads the file

# OpenCV's kernels round differently again (7.8e-5 seen on yolov2-voc's
# objectness, an absolute error in a logistic, against ONNX Runtime's)
CV_TOL = 3e-4


def test_opencv_reads_the_export(rng, tmp_path):
    cv2 = pytest.importorskip("cv2")
    cases = [(os.path.join(CFG, "yolov3-tiny-voc.cfg"), 160), (os.path.join(CFG, "yolov2-voc.cfg"), 96)]
    cases += [(os.path.join(ALEXEYAB, "yolov4-tiny.cfg"), 128)] if os.path.isdir(ALEXEYAB) else []
    for src, size in cases:
        net = dn.Network(sized_cfg(src, tmp_path, size))
        randomize(net, rng, recalibrate=True)
        x = rng.random(net.input_shape, dtype=np.float32)
        net.forward(x)
        path = str(tmp_path / "cv.onnx")
        net.export_onnx(path, decode=True)
        cvnet = cv2.dnn.readNetFromONNX(path)
        cvnet.setInput(x)
        names = [o.name for o in onnx.load(path).graph.output]
        assert sorted(cvnet.getUnconnectedOutLayersNames()) == sorted(names)
        outs = cvnet.forward(names)
        decoded = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(list(DECODED), {"input": x})
        for name, out in zip(names, outs):
            # the heads against our forward, the decoded boxes against ONNX Runtime's
            ref = decoded[DECODED.index(name)] if name in DECODED else net.layer_output(layer_of(name, net))
            out = np.asarray(out).reshape(ref.shape)
            finite = np.isfinite(ref)  # random weights: exp(tw) may overflow, on both sides alike
            assert (np.isfinite(out) == finite).all() and (out[~finite] == ref[~finite]).all()
            err = rel_err(out[finite], ref[finite])
            print(cv2.__version__, os.path.basename(src), name, err)
            assert err < CV_TOL, (src, name, err)


# ---------------------------------------------------------------- the three faces and the errors

def test_three_faces_write_the_same_file(tmp_path):
    cfg = sized_cfg(os.path.join(CFG, "yolov3-tiny-voc.cfg"), tmp_path, 96)
    a, b, c = (str(tmp_path / n) for n in ("py.onnx", "cli.onnx", "c.onnx"))
    assert dn.export_onnx(cfg, None, a, opset=12) == a
    r = subprocess.run([sys.executable, "-m", "darknet_py", "export", cfg, "", b, "--opset", "12"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "exported" in r.stdout
    if os.path.exists(DARKNET_BIN):
        out = run_darknet("export", "onnx", cfg, "", c, "-opset", "12")
        assert "Exported" in out.stdout
        with open(a, "rb") as fa, open(c, "rb") as fc:
            assert fa.read() == fc.read()
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()
    assert onnx.load(a).opset_import[0].version == 12
    # decode: the same three outputs from each face
    d1, d2 = str(tmp_path / "d1.onnx"), str(tmp_path / "d2.onnx")
    dn.export_onnx(cfg, None, d1, decode=True)
    r = subprocess.run([sys.executable, "-m", "darknet_py", "export", cfg, "", d2, "--decode"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    with open(d1, "rb") as f1, open(d2, "rb") as f2:
        assert f1.read() == f2.read()
    if os.path.exists(DARKNET_BIN):
        run_darknet("export", "onnx", cfg, "", c, "-decode")
        with open(d1, "rb") as f1, open(c, "rb") as fc:
            assert f1.read() == fc.read()
    outs = [o.name for o in onnx.load(d1).graph.output]
    assert outs == ["yolo_16", "yolo_23", "boxes", "objectness", "scores"]


def test_errors(tmp_path, make_cfg):
    cfg = sized_cfg(os.path.join(CFG, "yolov3-tiny-voc.cfg"), tmp_path, 96)
    net = dn.Network(cfg)
    with pytest.raises(DarknetIOError, match="no_such_dir"):
        net.export_onnx(str(tmp_path / "no_such_dir" / "m.onnx"))
    (tmp_path / "a_dir").mkdir()
    with pytest.raises(DarknetIOError, match="a_dir"):
        net.export_onnx(str(tmp_path / "a_dir"))
    target = tmp_path / "t.onnx"
    target.write_bytes(b"old")
    for opset in (10, 22):
        with pytest.raises(DarknetValueError, match=f"opset {opset}"):
            net.export_onnx(str(target), opset=opset)
    with pytest.raises(DarknetValueError):
        dn.export_onnx(cfg, None, str(target), batch=0)
    plain = dn.Network(make_cfg(NET.format(w=8, h=8) + conv(4)))
    with pytest.raises(DarknetValueError, match="decode needs"):
        plain.export_onnx(str(target), decode=True)
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["a_dir", "net.cfg", "net1.cfg", "t.onnx"]
    r = subprocess.run([sys.executable, "-m", "darknet_py", "export", cfg, "", str(tmp_path / "no" / "x.onnx")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "error" in r.stderr and "no/x.onnx" in r.stderr
    if os.path.exists(DARKNET_BIN):
        r = run_darknet("export", "onnx", cfg, "", str(tmp_path / "no" / "x.onnx"), check=False)
        assert r.returncode == 1 and "export onnx" in r.stderr and "no/x.onnx" in r.stderr
        r = run_darknet("export", "tflite", cfg, "", str(target), check=False)
        assert r.returncode == 1 and "usage" in r.stderr
