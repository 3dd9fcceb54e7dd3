"""calc_anchors (AlexeyAB's `detector calc_anchors`): the C core's k-means
against a NumPy reference of the same algorithm, the binary's and the
Python CLI's output, and errors naming the place."""
import os

import numpy as np
import pytest

import darknet_py as dn
from conftest import run_darknet


def kmeans_ref(boxes, n):
    """1 - IoU k-means as documented in csrc/data/anchors.c, in float64."""
    area = boxes[:, 0] * boxes[:, 1]
    boxes = boxes[np.lexsort((boxes[:, 1], boxes[:, 0], area))]
    c = boxes[[int((k + .5) * len(boxes) / n) for k in range(n)]].copy()

    def iou(b, c):
        inter = np.minimum(b[:, None, 0], c[None, :, 0]) * np.minimum(b[:, None, 1], c[None, :, 1])
        return inter / (b[:, None, 0] * b[:, None, 1] + c[None, :, 0] * c[None, :, 1] - inter)

    of = None
    for _ in range(1000):
        new = np.argmax(iou(boxes, c), axis=1)
        if of is not None and np.array_equal(new, of):
            break
        of = new
        for k in range(n):
            if np.any(of == k):
                c[k] = boxes[of == k].mean(axis=0)
    c = c[np.lexsort((c[:, 1], c[:, 0], c[:, 0] * c[:, 1]))]
    return c, iou(boxes, c).max(axis=1).mean()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A .data file over 40 images whose label files hold 1-4 random boxes
    in three size groups (the images themselves are never read)."""
    d = tmp_path_factory.mktemp("anchors")
    rng = np.random.default_rng(5)
    (d / "images").mkdir()
    (d / "labels").mkdir()
    paths, boxes = [], []
    for i in range(40):
        paths.append(str(d / "images" / f"{i}.jpg"))
        lines = []
        for _ in range(rng.integers(1, 5)):
            s = rng.choice([0.08, 0.25, 0.6])
            w, h = s * rng.uniform(0.6, 1.4), s * rng.uniform(0.6, 1.4)
            lines.append(f"{rng.integers(0, 3)} 0.5 0.5 {w:.6f} {h:.6f}")
            boxes.append((np.float32(float(f"{w:.6f}")), np.float32(float(f"{h:.6f}"))))
        (d / "labels" / f"{i}.txt").write_text("\n".join(lines) + "\n")
    (d / "train.txt").write_text("\n".join(paths) + "\n")
    (d / "x.data").write_text(f"classes = 3\ntrain = {d / 'train.txt'}\n")
    return d, np.array(boxes, np.float64)


@pytest.mark.parametrize("n,width,height", [(1, 416, 416), (3, 416, 416), (5, 320, 608), (9, 416, 416)])
def test_kmeans_matches_reference(labelled, n, width, height):
    d, boxes = labelled
    r = dn.calc_anchors(d / "x.data", n, width, height)
    want, iou = kmeans_ref(boxes * [width, height], n)
    assert r.boxes == len(boxes) and r.anchors.shape == (n, 2)
    np.testing.assert_allclose(r.anchors, want, rtol=1e-6)
    assert r.avg_iou == pytest.approx(iou, rel=1e-6)
    area = r.anchors[:, 0] * r.anchors[:, 1]
    assert np.all(np.diff(area) >= 0)
    if n == 3:  # the three size groups are found
        assert r.avg_iou > 0.6
        np.testing.assert_allclose(np.sqrt(area) / 416, [0.08, 0.25, 0.6], rtol=0.15)


def test_cli_and_python_cli_print_the_anchors(labelled, capsys):
    d, _ = labelled
    r = dn.calc_anchors(d / "x.data", 5)
    out = run_darknet("detector", "calc_anchors", d / "x.data", "-num_of_clusters", 5, "-width", 416,
                      "-height", 416).stdout
    assert f"[yolo] anchors = {r.cfg()}\n" in out
    assert f"[region] anchors = {r.cfg(stride=32)}\n" in out
    assert f"avg IoU = {100 * r.avg_iou:.2f}%" in out
    from darknet_py.__main__ import main
    assert main(["calc-anchors", str(d / "x.data"), "--num", "5"]) == 0
    printed = capsys.readouterr().out
    assert f"[yolo] anchors = {r.cfg()}\n" in printed and f"[region] anchors = {r.cfg(stride=32)}\n" in printed
    w, h = r.anchors[0]
    assert r.cfg().startswith(f"{w:.0f},{h:.0f}, ") and r.cfg(32).startswith(f"{w / 32:.4f},{h / 32:.4f}, ")


def test_errors(labelled, tmp_path):
    d, boxes = labelled
    with pytest.raises(dn.DarknetValueError, match=f"{len(boxes)} labelled boxes in 40 images, fewer than"):
        dn.calc_anchors(d / "x.data", len(boxes) + 1)
    with pytest.raises(dn.DarknetValueError, match="clusters >= 1"):
        dn.calc_anchors(d / "x.data", 0)
    bad = tmp_path / "labels"
    bad.mkdir()
    (tmp_path / "images").mkdir()
    (bad / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n")
    (tmp_path / "l.txt").write_text(str(tmp_path / "images" / "a.jpg") + "\n")
    (tmp_path / "y.data").write_text(f"classes = 3\ntrain = {tmp_path / 'l.txt'}\n")
    with pytest.raises(dn.CfgParseError, match=r"a\.txt:2:"):
        dn.calc_anchors(tmp_path / "y.data", 1)
    r = run_darknet("detector", "calc_anchors", tmp_path / "y.data", check=False)
    assert r.returncode == 1 and "a.txt:2:" in r.stderr
    (tmp_path / "z.data").write_text("classes = 3\n")
    with pytest.raises(ValueError, match="no train list"):
        dn.calc_anchors(tmp_path / "z.data")
    with pytest.raises(FileNotFoundError, match="none.data"):
        dn.calc_anchors(tmp_path / "none.data")
