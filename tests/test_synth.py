"""darknet_py.synth: the synthetic shapes data set (determinism, annotations, balance,
splits) and the `python -m darknet_py synth-voc` command end to end."""
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from conftest import ROOT
from darknet_py import synth, voc
from darknet_py.__main__ import main


def read_tree(root):
    """{relative path: bytes} of every file under root."""
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, root)] = f.read()
    return files


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    kw = dict(images=6, classes=4, size=64)
    synth.make_synthetic_voc(tmp_path / "a", seed=3, **kw)
    synth.make_synthetic_voc(tmp_path / "b", seed=3, **kw)
    synth.make_synthetic_voc(tmp_path / "c", seed=4, **kw)
    a, b, c = (read_tree(tmp_path / k) for k in "abc")
    assert len(a) == 6 * 2 + 2 + 1
    assert a == b
    assert a.keys() == c.keys()
    jpgs = [k for k in a if k.endswith(".jpg")]
    assert all(a[k] != c[k] for k in jpgs)


def test_make_image_is_deterministic_and_boxes_are_tight():
    x1, o1 = synth.make_image(8, 96, np.random.default_rng(5))
    x2, o2 = synth.make_image(8, 96, np.random.default_rng(5))
    assert x1.shape == (96, 96, 3) and x1.dtype == np.uint8
    assert np.array_equal(x1, x2) and o1 == o2
    # a lone object is painted in one flat colour: the pixels of that colour span exactly
    # its box (1-based, inclusive)
    for seed in range(20):
        img, objs = synth.make_image(8, 96, np.random.default_rng(seed), min_objects=1,
                                     max_objects=1)
        assert len(objs) == 1
        cls, x0, y0, x1, y1 = objs[0]
        assert 0 <= cls < 8 and 1 <= x0 < x1 <= 96 and 1 <= y0 < y1 <= 96
        inside = img[y0 - 1:y1, x0 - 1:x1].reshape(-1, 3)
        colours, counts = np.unique(inside, axis=0, return_counts=True)
        colour = colours[np.argmax(counts)]
        ys, xs = np.nonzero(np.all(img == colour, axis=2))
        assert (xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)


def test_annotations_parse_and_match_labels(tmp_path):
    size, n = 80, 12
    info = synth.make_synthetic_voc(tmp_path, images=n, classes=10, size=size, seed=1,
                                    min_objects=2, max_objects=3)
    assert info["names"] == list(synth.SHAPES)
    assert (tmp_path / "synth.names").read_text().split() == list(synth.SHAPES)
    ann_dir = tmp_path / "VOCdevkit" / "VOC2007" / "Annotations"
    counts = []
    for i in range(n):
        ann = voc.parse_annotation(ann_dir / f"{i:06d}.xml", synth.SHAPES)
        assert (ann["filename"], ann["width"], ann["height"]) == (f"{i:06d}.jpg", size, size)
        assert 2 <= len(ann["objects"]) <= 3
        for o in ann["objects"]:
            x0, y0, x1, y1 = o["bbox"]
            assert 1 <= x0 < x1 <= size and 1 <= y0 < y1 <= size
            assert not o["difficult"] and not o["truncated"]
        counts.append(len(ann["objects"]))
        # the annotation holds what make_image drew for this image
        _, objs = synth.make_image(10, size, np.random.default_rng([1, 1, i]), True, 2, 3)
        assert [(synth.SHAPES.index(o["name"]), *o["bbox"]) for o in ann["objects"]] == objs
    # and the converted Darknet labels have one line per object
    w = voc.convert(tmp_path / "VOCdevkit", tmp_path / "dn", classes=info["names"],
                    progress=False)
    for i in range(n):
        lines = (tmp_path / "dn" / "VOC2007" / "labels" / f"{i:06d}.txt").read_text().splitlines()
        assert len(lines) == counts[i]
    assert sum(1 for _ in open(w["2007_train"])) + sum(1 for _ in open(w["2007_val"])) == n
    assert open(w["train"]).read() == open(w["2007_train"]).read()


def test_objects_overlap_little():
    for seed in range(30):
        _, objs = synth.make_image(5, 64, np.random.default_rng(seed), min_objects=4, max_objects=4)
        assert len(objs) >= 1
        boxes = [o[1:] for o in objs]
        for i in range(len(boxes)):
            for j in range(i):
                iou, cover = synth._overlap(boxes[i], boxes[j])
                assert iou < synth.MAX_IOU and cover < synth.MAX_COVER


def test_class_balance_is_roughly_uniform():
    counts = Counter()
    for seed in range(250):
        _, objs = synth.make_image(5, 48, np.random.default_rng([9, seed]))
        counts.update(o[0] for o in objs)
    total = sum(counts.values())
    assert sorted(counts) == [0, 1, 2, 3, 4]
    assert total > 250 * 2
    for k in range(5):
        assert abs(counts[k] - total / 5) < 0.2 * total / 5, counts


@pytest.mark.parametrize("images, split, n_train", [(10, 0.8, 8), (7, 0.5, 4), (5, 1.0, 5),
                                                    (5, 0.0, 0)])
def test_split_sizes(tmp_path, images, split, n_train):
    info = synth.make_synthetic_voc(tmp_path, images=images, classes=2, size=32, split=split)
    main_dir = tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main"
    train = (main_dir / "train.txt").read_text().split()
    val = (main_dir / "val.txt").read_text().split()
    assert len(train) == n_train and len(val) == images - n_train
    assert sorted(train + val) == [f"{i:06d}" for i in range(images)]
    assert train == info["train"] and val == info["val"]


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="classes"):
        synth.make_image(11, 64, rng)
    with pytest.raises(ValueError, match="min_objects"):
        synth.make_image(3, 64, rng, min_objects=3, max_objects=2)
    with pytest.raises(ValueError, match="split"):
        synth.make_synthetic_voc("/nonexistent", images=3, split=1.5)


def test_cli_synth_voc_end_to_end(tmp_path):
    out = tmp_path / "synth"
    r = subprocess.run([sys.executable, "-m", "darknet_py", "synth-voc", str(out), "--images", "12",
                        "--classes", "3", "--size", "64", "--seed", "2", "--val-split", "0.25",
                        "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "9 train + 3 val" in r.stdout
    data = dict(l.split("=", 1) for l in (out / "synth.data").read_text().split())
    assert data["classes"] == "3"
    assert data["valid"] == str(out / "2007_val.txt")
    assert open(data["names"]).read().split() == ["circle", "square", "triangle"]
    assert os.path.isdir(data["backup"])
    with open(data["train"]) as f:
        train = f.read().split()
    assert len(train) == 9
    for p in train:
        assert os.path.isfile(p)
        lines = open(voc.label_path(p)).read().splitlines()
        assert 1 <= len(lines) <= 4
        assert all(0 <= int(l.split()[0]) < 3 for l in lines)
    valid = open(data["valid"]).read().split()
    assert len(valid) == 3 and not set(valid) & set(train)
    assert not (out / "voc.data").exists()


def test_cli_errors_exit_2(tmp_path, capsys):
    assert main(["synth-voc", str(tmp_path / "x"), "--classes", "11"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "classes must be between 1 and 10" in err
    assert main(["voc-label", str(tmp_path / "missing"), str(tmp_path / "o")]) == 2
    assert "missing" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == 2
