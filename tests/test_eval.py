"""Evaluation: AP/mAP on hand-built cases (answers worked out here), the
numbers at a confidence threshold, and `detector map | valid | recall`, the
Python validate() and evaluate() agreeing on the same detections, end to end
on a synthetic set and on the VOC subset when present."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import darknet_py as dn
from conftest import ROOT, VOC_ROOT, run_darknet
from darknet_py import _core, voc
from darknet_py.cfgfile import read_cfg, write_cfg

SMALL_CFG = os.path.join(ROOT, "cfg", "yolov2-tiny-voc-small.cfg")


def box(x, y, w=10, h=10):
    return (x, y, x + w, y + h)


# ---------------------------------------------------------------------------- hand cases

def test_perfect_detections_give_ap_1():
    gt = {"a": [(0, box(0, 0)), (1, box(50, 50))], "b": [(0, box(20, 0, 30, 40))]}
    dets = {"a": [(0, .9, box(0, 0)), (1, .8, box(50, 50))], "b": [(0, .7, box(20, 0, 30, 40))]}
    for points in (0, 11, 101):
        r = dn.evaluate(dets, gt, points=points)
        assert r.map == pytest.approx(1.0) and r.ap == {"class_0": 1.0, "class_1": 1.0}
        assert (r.tp, r.fp, r.fn) == (3, 0, 0) and r.precision == r.recall == r.f1 == 1.0
        assert r.iou == pytest.approx(1.0)


def test_false_positive_ranked_first():
    # 2 objects; ranking FP (.9), TP (.8), TP (.7): PR points (0, 0), (1/2, 1/2), (1, 2/3).
    # Monotone precision is 2/3 everywhere -> AP = 2/3 (area, 11 and 101 points alike).
    gt = {"a": [(0, box(0, 0)), (0, box(40, 0))]}
    dets = {"a": [(0, .9, box(100, 100)), (0, .8, box(0, 0)), (0, .7, box(40, 0))]}
    for points in (0, 11, 101):
        assert dn.evaluate(dets, gt, points=points).map == pytest.approx(2 / 3)
    # without the false positive: 1
    assert dn.evaluate({"a": dets["a"][1:]}, gt).map == pytest.approx(1.0)


def test_duplicate_detection_is_a_false_positive():
    # objects A, B; ranking A (.9), A again (.8, duplicate), B (.7):
    # PR (1/2, 1), (1/2, 1/2), (1, 2/3) -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    gt = {"a": [(0, box(0, 0)), (0, box(40, 0))]}
    dets = {"a": [(0, .9, box(0, 0)), (0, .8, box(1, 0)), (0, .7, box(40, 0))]}
    r = dn.evaluate(dets, gt, thresh=.5)
    assert r.map == pytest.approx(5 / 6)
    assert (r.tp, r.fp, r.fn) == (2, 1, 0)


def test_difficult_objects_are_ignored():
    gt = {"a": [(0, box(0, 0)), (0, box(40, 0), True)], "b": [(0, box(0, 0, 20, 20), True)]}
    # a detection of the difficult object ranked first is neither TP nor FP,
    # and the difficult object that is never found is no miss
    dets = {"a": [(0, .9, box(40, 0)), (0, .8, box(0, 0))]}
    r = dn.evaluate(dets, gt, thresh=.5)
    assert r.map == pytest.approx(1.0)
    assert (r.tp, r.fp, r.fn) == (1, 0, 0)
    pc = r.per_class[0]
    assert (pc.truth, pc.difficult, pc.detections) == (1, 2, 2)
    # the same objects not difficult: 3 objects, 2 found in order -> AP 2/3, FN 1
    plain = {k: [(c, b) for c, b, *_ in v] for k, v in gt.items()}
    r = dn.evaluate(dets, plain, thresh=.5)
    assert r.map == pytest.approx(2 / 3) and (r.tp, r.fp, r.fn) == (2, 0, 1)


def test_eleven_and_101_points_differ_from_area_as_computed_by_hand():
    # 3 objects; ranking TP, FP, TP, FP; one object never found.
    # PR points: (1/3, 1), (1/3, 1/2), (2/3, 2/3), (2/3, 1/2); monotone precision 1, 2/3, 2/3, 1/2.
    gt = {"a": [(0, box(0, 0)), (0, box(40, 0)), (0, box(80, 0))]}
    dets = {"a": [(0, .9, box(0, 0)), (0, .8, box(0, 100)), (0, .7, box(40, 0)),
                  (0, .6, box(0, 200))]}
    area = 1 / 3 * 1 + 1 / 3 * 2 / 3                 # 5/9
    eleven = (4 * 1 + 3 * 2 / 3) / 11                # r = 0, .1, .2, .3 -> 1; .4, .5, .6 -> 2/3
    hundred_one = (34 * 1 + 33 * 2 / 3) / 101        # r = 0..0.33 -> 1; 0.34..0.66 -> 2/3
    assert dn.evaluate(dets, gt).map == pytest.approx(area, abs=1e-12)
    assert dn.evaluate(dets, gt, points=11).map == pytest.approx(eleven, abs=1e-12)
    assert dn.evaluate(dets, gt, points=101).map == pytest.approx(hundred_one, abs=1e-12)
    assert area > hundred_one > eleven


def test_numbers_at_a_confidence_threshold():
    gt = {"img0": [(0, box(0, 0)), (1, box(20, 20))], "img1": [(0, box(0, 0))]}
    dets = {
        "img0": [(0, .9, box(0, 0, 10, 8)),    # IoU 0.8 -> TP
                 (1, .3, box(20, 20))],        # TP but below thresh
        "img1": [(0, .6, box(5, 0)),           # IoU 50/150 = 1/3 -> FP
                 (0, .4, box(0, 0))],          # TP below thresh
    }
    r = dn.evaluate(dets, gt, thresh=.5)
    assert (r.tp, r.fp, r.fn) == (1, 1, 2)
    assert r.precision == pytest.approx(.5) and r.recall == pytest.approx(1 / 3)
    assert r.f1 == pytest.approx(2 * .5 * (1 / 3) / (.5 + 1 / 3))
    assert r.iou == pytest.approx(.8, rel=1e-6)
    c0, c1 = r.per_class
    assert (c0.tp, c0.fp, c0.fn, c0.truth, c0.detections) == (1, 1, 1, 2, 3)
    assert (c1.tp, c1.fp, c1.fn) == (0, 0, 1)
    # class 0 ranking TP(.9), FP(.6), TP(.4): PR (1/2, 1), (1/2, 1/2), (1, 2/3) -> 5/6; class 1: 1
    assert r.ap == {"class_0": pytest.approx(5 / 6), "class_1": pytest.approx(1.0)}
    assert r.map == pytest.approx((5 / 6 + 1) / 2)
    # the threshold is strict (score > thresh), as Darknet's
    assert dn.evaluate(dets, gt, thresh=.9).tp == 0
    # a lower IoU threshold turns the 1/3 overlap into a TP and the later exact box into a duplicate
    r = dn.evaluate(dets, gt, thresh=.5, iou_thresh=.3)
    assert (r.tp, r.fp, r.fn) == (2, 0, 1)
    text = r.table()
    assert "class_id = 0, name = class_0, ap = " in text
    assert " for conf_thresh = 0.50, precision = 1.00, recall = 0.67, F1-score = 0.80" in text
    assert " for conf_thresh = 0.50, TP = 2, FP = 0, FN = 1, average IoU = " in text
    assert re.search(r"mean average precision \(mAP@0\.30\) = [01]\.\d{6}, or \d+\.\d\d %", text)


def test_classes_names_and_no_ground_truth():
    gt = {"a": [("dog", box(0, 0))]}
    dets = {"a": [("dog", .9, box(0, 0)), ("cat", .8, box(50, 50))]}
    r = dn.evaluate(dets, gt, classes=["cat", "dog", "bird"])
    assert r.ap == {"dog": 1.0}  # cat and bird have no ground truth: not in mAP
    assert r.map == 1.0 and r.per_class[0].fp == 1
    assert "name = cat, ap = 0.00%" in r.table() and "no ground truth" in r.table()
    with pytest.raises(ValueError, match="unknown class 'horse'"):
        dn.evaluate({"a": [("horse", .5, box(0, 0))]}, gt, classes=["cat", "dog"])
    with pytest.raises(dn.DarknetValueError, match="class 5 outside"):
        dn.evaluate({"a": [(5, .5, box(0, 0))]}, {}, classes=2)
    with pytest.raises(ValueError, match="points"):
        dn.evaluate({}, gt, points=7)
    with pytest.raises(ValueError, match="x2 < x1"):
        dn.evaluate({}, {"a": [(0, (10, 0, 0, 10))]})
    # Detection objects from Network.detect are accepted
    d = dn.Detection("dog", 1, .9, box(0, 0))
    assert dn.evaluate({"a": [d]}, gt, classes=["cat", "dog"]).map == 1.0


def voc_map_reference(truth, dets, classes, iou_thresh):
    """The VOC devkit rules in NumPy: per class, detections by score descending
    (ties: input order), each matched to the best-IoU same-class object of its
    image (first of equal ones); free -> TP, taken -> FP, difficult -> ignored."""
    def iou(a, b):
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        inter = 0 if w < 0 or h < 0 else w * h
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0
    aps = []
    for c in range(classes):
        objs = [t for t in truth if t[1] == c]
        npos = sum(1 for t in objs if not t[6])
        if npos == 0:
            continue
        mine = dets[dets[:, 1] == c]
        mine = mine[np.argsort(-mine[:, 2], kind="stable")]
        taken, tp, fp, prec, rec = set(), 0, 0, [], []
        for d in mine:
            best, best_i = -1, None
            for i, t in enumerate(truth):
                if t[1] == c and t[0] == d[0]:
                    v = iou(d[3:7], t[2:6])
                    if v > best:
                        best, best_i = v, i
            if best_i is not None and best >= iou_thresh:
                if truth[best_i][6]:
                    continue
                if best_i not in taken:
                    taken.add(best_i)
                    tp += 1
                else:
                    fp += 1
            else:
                fp += 1
            prec.append(tp / (tp + fp))
            rec.append(tp / npos)
        prec = np.maximum.accumulate(np.array(prec[::-1] or [0.0]))[::-1]
        rec = np.array(rec or [0.0])
        aps.append(float(np.sum(np.diff(np.r_[0, rec]) * prec)))
    return float(np.mean(aps))


@pytest.mark.parametrize("seed", range(4))
def test_evaluator_equals_numpy_reference(seed):
    """Random objects and detections with tied, zero, negative-zero and
    negative scores and difficult objects: the C evaluator's mAP is the
    reference's (its ranking is a radix sort; ties must go in input order)."""
    rng = np.random.default_rng(seed)
    images, classes = 12, 3
    nt = 40
    t_xy = rng.integers(0, 8, (nt, 2)) * 10.0
    truth = np.column_stack([rng.integers(0, images, nt), rng.integers(0, classes, nt), t_xy,
                             t_xy + rng.integers(1, 4, (nt, 2)) * 10.0, rng.random(nt) < .15])
    nd = 400
    src = truth[rng.integers(0, nt, nd)]
    jitter = rng.integers(-1, 2, (nd, 4)) * 5.0
    scores = np.where(rng.random(nd) < .6, rng.choice([.9, .5, .25, 0.0, -0.0, -.3], nd), rng.random(nd))
    assert np.signbit(scores[scores == 0]).any()
    dets = np.column_stack([src[:, 0], np.where(rng.random(nd) < .8, src[:, 1], rng.integers(0, classes, nd)),
                            scores, src[:, 2:6] + jitter])
    r = _core.evaluate(truth, dets, classes, .5, .25, 0).summary()
    assert r["map"] == pytest.approx(voc_map_reference(truth, dets, classes, .5), abs=1e-9)


def test_evaluator_takes_many_detections():
    rng = np.random.default_rng(0)
    images, per_image, classes = 2000, 100, 20
    n = images * per_image
    xy = rng.random((n, 2)) * 400
    wh = rng.random((n, 2)) * 100 + 5
    dets = np.column_stack([np.repeat(np.arange(images), per_image), rng.integers(0, classes, n),
                            rng.random(n), xy, xy + wh])
    t_xy = rng.random((images * 5, 2)) * 400
    truth = np.column_stack([np.repeat(np.arange(images), 5), rng.integers(0, classes, images * 5),
                             t_xy, t_xy + 50, np.zeros(images * 5)])
    s = _core.evaluate(truth, dets, classes, .5, .25, 0).summary()
    assert s["detections"] == n and 0 < s["map"] < 1
    assert s["tp"] + s["fn"] == images * 5


# ---------------------------------------------------------------------------- synthetic set

@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A synthetic VOC-format set (3 classes), a small 3-class cfg and random weights."""
    out = tmp_path_factory.mktemp("synth")
    subprocess.run([sys.executable, "-m", "darknet_py", "synth-voc", str(out), "--images", "20",
                    "--classes", "3", "--size", "128", "--no-progress"], cwd=ROOT, check=True,
                   capture_output=True)
    sections = read_cfg(SMALL_CFG)
    sections[0].set("width", 128)
    sections[0].set("height", 128)
    region = sections[-1]
    region.set("classes", 3)
    sections[-2].set("filters", int(region.get("num")) * (3 + 5))
    cfg = str(out / "tiny3.cfg")
    write_cfg(sections, cfg)
    weights = str(out / "tiny3.weights")
    dn.Network(cfg, seed=7).save_weights(weights)
    data = str(out / "synth.data")
    with open(data) as f:
        valid = re.search(r"valid=(.*)", f.read()).group(1).strip()
    with open(valid) as f:
        images = [l.strip() for l in f if l.strip()]
    # one difficult object next to the first val image's labels
    label = _core.label_path(images[0])
    with open(label[:-4] + ".difficult.txt", "w") as f:
        f.write("1 0.5 0.5 0.4 0.4\n")
    return dict(dir=out, data=data, cfg=cfg, weights=weights, images=images)


def parse_map_output(text):
    """Numbers of `detector map` / EvalResult.table() text."""
    ap = {m[1]: float(m[2]) for m in re.finditer(r"name = (\S+), ap = ([\d.]+)%", text)}
    p = re.search(r"precision = ([\d.]+), recall = ([\d.]+), F1-score = ([\d.]+)", text)
    c = re.search(r"TP = (\d+), FP = (\d+), FN = (\d+), average IoU = ([\d.]+) %", text)
    m = re.search(r"\(mAP@([\d.]+)\) = ([\d.]+), or", text)
    return dict(ap=ap, prf=tuple(map(float, p.groups())), counts=tuple(map(int, c.groups()[:3])),
                iou=float(c[4]), map=float(m[2]))


def test_cli_map_python_validate_and_evaluate_agree(synth):
    # a low IoU threshold so that random weights still give true positives
    args = ("-iou_thresh", "0.25", "-thresh", "0.15")
    out = run_darknet("detector", "map", synth["data"], synth["cfg"], synth["weights"], *args).stdout
    cli = parse_map_output(out)
    t = re.search(r"Total Detection Time: \d+ Seconds \(images and network ([\d.]+) s = ([\d.]+)%, decoding "
                  r"and NMS ([\d.]+) s = ([\d.]+)%, labels, matching and AP ([\d.]+) s = ([\d.]+)%\)", out)
    assert t and float(t[2]) > 0 and 99.5 < float(t[2]) + float(t[4]) + float(t[6]) < 100.5
    r = dn.validate(synth["data"], synth["cfg"], synth["weights"], iou_thresh=.25, thresh=.15,
                    progress=False, return_detections=True)
    assert r.tp > 0 and 0 < r.map < 1
    assert parse_map_output(r.table()) == cli
    assert r.table() in out  # the very same text
    assert cli["map"] == pytest.approx(r.map, abs=1e-6)
    assert cli["counts"] == (r.tp, r.fp, r.fn)
    assert set(cli["ap"]) == {"circle", "square", "triangle"}
    assert r.images == len(synth["images"]) == len(r.detections)
    # the difficult object of the first image is scored as difficult, and only there
    assert sum(c.difficult for c in r.per_class) == 1
    assert [t for t in r.ground_truth[synth["images"][0]] if t[2]] == [(1, pytest.approx((38.4, 38.4, 89.6, 89.6)), True)]
    # evaluate() on the captured detections goes through the same evaluator
    e = dn.evaluate(r.detections, r.ground_truth, classes=r.names, iou_thresh=.25, thresh=.15)
    assert e.table() == r.table()
    assert (e.map, e.tp, e.fp, e.fn, e.iou) == (r.map, r.tp, r.fp, r.fn, r.iou)
    rp = dn.validate(synth["data"], synth["cfg"], synth["weights"], iou_thresh=.25, points=11,
                     progress=False)
    for points in (11, 101):
        ep = dn.evaluate(r.detections, r.ground_truth, classes=r.names, iou_thresh=.25, points=points)
        assert f"used {points} Recall-points" in ep.table() and ep.map != r.map
    assert rp.table() == dn.evaluate(r.detections, r.ground_truth, classes=r.names, iou_thresh=.25,
                                     points=11).table()


def test_captured_detections_match_the_network(synth):
    r = dn.validate(synth["data"], synth["cfg"], synth["weights"], progress=False, return_detections=True)
    net = dn.Network(synth["cfg"], synth["weights"])
    path = synth["images"][1]
    img = _core.load_image(path)
    _, _, h, w = net.input_shape
    net.forward(_core.letterbox(img, w, h))
    boxes, _, probs = net._net.detections(0, img.shape[1], img.shape[0], .005, True, False, .45)
    expect = sorted((int(k), float(probs[i, k]), (float(b[0]) - float(b[2]) / 2, float(b[1]) - float(b[3]) / 2,
                                                  float(b[0]) + float(b[2]) / 2, float(b[1]) + float(b[3]) / 2))
                    for i, b in enumerate(boxes) for k in np.nonzero(probs[i] > .005)[0])
    got = sorted(r.detections[path])
    assert len(got) == len(expect) > 0
    for g, e in zip(got, expect):
        assert g[0] == e[0] and g[1] == pytest.approx(e[1], rel=1e-6)
        assert g[2] == pytest.approx(e[2], abs=1e-3)


def test_valid_writes_result_files_that_parse_back(synth, tmp_path):
    res_dir = tmp_path / "res"
    data = tmp_path / "with_results.data"
    data.write_text(open(synth["data"]).read() + f"results={res_dir}\n")
    run_darknet("detector", "valid", data, synth["cfg"], synth["weights"], "-out", "val_")
    names = ["circle", "square", "triangle"]
    assert sorted(os.listdir(res_dir)) == [f"val_{n}.txt" for n in names]
    r = dn.validate(synth["data"], synth["cfg"], synth["weights"], progress=False, return_detections=True)
    sizes = {os.path.splitext(os.path.basename(p))[0]: _core.load_image(p).shape[:2] for p in synth["images"]}
    expect = []
    for path, dets in r.detections.items():
        image_id = os.path.splitext(os.path.basename(path))[0]
        h, w = sizes[image_id]
        for c, score, (x1, y1, x2, y2) in dets:
            expect.append((names[c], image_id, score, max(x1 + 1, 1), max(y1 + 1, 1), min(x2 + 1, w),
                           min(y2 + 1, h)))
    got = []
    for n in names:
        for line in open(res_dir / f"val_{n}.txt"):
            f = line.split()
            got.append((n, f[0], *map(float, f[1:])))
    assert len(got) == len(expect) > 0
    for g, e in zip(sorted(got), sorted(expect)):
        assert g[:2] == e[:2]
        assert g[2:] == pytest.approx(e[2:], abs=2e-6 * 128)
    # default folder results/ (relative to the working directory), Python writer alike
    run_darknet("detector", "valid", synth["data"], synth["cfg"], synth["weights"], cwd=tmp_path)
    assert sorted(os.listdir(tmp_path / "results")) == [f"comp4_det_test_{n}.txt" for n in names]
    from darknet_py.evaluation import write_results
    write_results(synth["data"], synth["cfg"], synth["weights"], out_dir=tmp_path / "py", progress=False)
    # (./darknet and the Python module are separate builds whose floats may differ in the
    # last digits, so lines are compared as numbers)
    for n in names:
        py = [l.split() for l in open(tmp_path / "py" / f"comp4_det_test_{n}.txt")]
        cli = [l.split() for l in open(tmp_path / "results" / f"comp4_det_test_{n}.txt")]
        assert [l[0] for l in py] == [l[0] for l in cli]
        assert np.allclose(np.array([l[1:] for l in py], float), np.array([l[1:] for l in cli], float),
                           atol=1e-3)
    assert not [f for f in os.listdir(tmp_path / "py") if ".tmp" in f]
    from darknet_py.__main__ import main
    assert main(["valid", synth["data"], synth["cfg"], synth["weights"], "--out-dir",
                 str(tmp_path / "cmd"), "--prefix", "x_", "--no-progress"]) == 0
    assert sorted(os.listdir(tmp_path / "cmd")) == [f"x_{n}.txt" for n in names]


def test_recall_lines(synth):
    out = run_darknet("detector", "recall", synth["data"], synth["cfg"], synth["weights"]).stdout
    lines = out.splitlines()
    assert len(lines) == len(synth["images"])
    pat = re.compile(r"^ *(\d+) +(\d+) +(\d+)\tRPs/Img: ([\d.]+)\tIOU: ([\d.]+)%\tRecall:([\d.]+)%$")
    rows = [pat.match(l) for l in lines]
    assert all(rows), lines
    assert [int(m[1]) for m in rows] == list(range(len(lines)))
    r = dn.validate(synth["data"], synth["cfg"], synth["weights"], progress=False)
    last = rows[-1]
    assert int(last[3]) == r.num_truth  # difficult objects are not counted
    assert 0 <= int(last[2]) <= int(last[3]) and float(last[4]) > 0
    assert 0 <= float(last[5]) <= 100 and 0 <= float(last[6]) <= 100


def test_end_to_end_numbers_are_valid_and_repeatable(synth, capsys):
    a = dn.validate(synth["data"], synth["cfg"], synth["weights"], progress=True)
    b = dn.validate(synth["data"], synth["cfg"], synth["weights"], progress=False)
    for r in (a, b):
        for v in (r.map, r.precision, r.recall, r.f1, r.iou, *r.ap.values()):
            assert 0 <= v <= 1
    assert a.table() == b.table() and a.map == b.map
    assert "img" in capsys.readouterr().err  # the tqdm bar
    for r in (a, b):  # where the time went: both parts measured
        assert r.seconds["network"] > 0 and r.seconds["decode"] > 0 and r.seconds["eval"] > 0
    # python -m darknet_py map prints the same table
    from darknet_py.__main__ import main
    assert main(["map", synth["data"], synth["cfg"], synth["weights"], "--no-progress"]) == 0
    assert a.table() in capsys.readouterr().out


def test_validate_errors_name_the_files(synth, tmp_path):
    bad = tmp_path / "bad.data"
    bad.write_text(f"classes=5\nvalid={synth['dir']}/2007_val.txt\n")
    with pytest.raises(dn.DarknetValueError, match="classes = 5.*tiny3.cfg"):
        dn.validate(bad, synth["cfg"], synth["weights"], progress=False)
    bad.write_text(f"classes=3\nvalid={tmp_path}/missing.txt\n")
    with pytest.raises(dn.DarknetIOError, match="missing.txt"):
        dn.validate(bad, synth["cfg"], synth["weights"], progress=False)
    lst = tmp_path / "list.txt"
    lst.write_text(synth["images"][0] + "\n" + str(tmp_path / "nope.jpg") + "\n")
    bad.write_text(f"classes=3\nvalid={lst}\n")
    r = run_darknet("detector", "map", bad, synth["cfg"], synth["weights"], check=False)
    assert r.returncode == 1 and "nope.jpg" in r.stderr
    with pytest.raises(dn.DarknetValueError, match="iou_thresh"):
        dn.validate(synth["data"], synth["cfg"], synth["weights"], iou_thresh=0, progress=False)
    # an exception in a callback stops the run and is raised as is
    def stop(done, total):
        raise KeyError("stop here")
    with pytest.raises(KeyError, match="stop here"):
        _core.validate(synth["data"], synth["cfg"], synth["weights"], progress=stop)


# ---------------------------------------------------------------------------- VOC subset

def test_voc_subset(tmp_path):
    src = os.path.join(VOC_ROOT, "VOCdevkit", "VOC2007")
    if not os.path.isdir(src):
        pytest.skip(f"VOC subset not found at {VOC_ROOT}")
    with open(os.path.join(src, "ImageSets", "Main", "val.txt")) as f:
        ids = [l.strip() for l in f if l.strip()][:4]
    devkit = tmp_path / "VOCdevkit"
    year = devkit / "VOC2007"
    (year / "ImageSets" / "Main").mkdir(parents=True)
    for d in ("JPEGImages", "Annotations"):
        os.symlink(os.path.join(src, d), year / d)
    (year / "ImageSets" / "Main" / "val.txt").write_text("\n".join(ids) + "\n")
    written = voc.convert(devkit, tmp_path / "out", sets=["val"], progress=False)
    weights = tmp_path / "tiny.weights"
    dn.Network(SMALL_CFG, seed=1).save_weights(weights)
    r = dn.validate(written["data"], SMALL_CFG, weights, progress=False, iou_thresh=.3)
    assert r.images == 4 and r.num_truth > 0 and len(r.per_class) == 20
    assert r.per_class[0].name == "aeroplane"
    for v in (r.map, r.precision, r.recall, r.f1, r.iou, *r.ap.values()):
        assert 0 <= v <= 1
    out = run_darknet("detector", "map", written["data"], SMALL_CFG, weights, "-iou_thresh", "0.3").stdout
    assert parse_map_output(out) == parse_map_output(r.table())
