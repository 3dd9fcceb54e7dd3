"""Training data: label paths and files, the background loader, and Darknet's
augmentation (boxes must follow the pixels through jitter, scaling and flips)."""
import os

import numpy as np
import pytest
from PIL import Image

import darknet_py as dn
from darknet_py import _core


def test_label_path_rules():
    assert _core.label_path("/d/VOC2007/JPEGImages/000001.jpg") == "/d/VOC2007/labels/000001.txt"
    assert _core.label_path("/d/coco/images/train/x.png") == "/d/coco/labels/train/x.txt"
    assert _core.label_path("/d/a.b/img/x") == "/d/a.b/img/x.txt"


def test_labels_parse(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("0 0.5 0.5 0.2 0.4\n\n3 0.1 0.2 0.05 0.06\n")
    got = _core.load_labels(str(p), 4)
    np.testing.assert_allclose(got, [[0, .5, .5, .2, .4], [3, .1, .2, .05, .06]], rtol=1e-6)
    assert _core.load_labels(str(tmp_path / "missing.txt"), 4).shape == (0, 5)


@pytest.mark.parametrize("line,needle", [
    ("7 0.5 0.5 0.2 0.2", "class id 7 outside [0, 4)"),
    ("-1 0.5 0.5 0.2 0.2", "class id -1"),
    ("1 1.5 0.5 0.2 0.2", "not inside [0,1]"),
    ("1 0.5 0.5 0 0.2", "positive size"),
    ("1 0.5 0.5 0.2", "expected 'class cx cy w h'"),
    ("1 0.5 0.5 0.2 0.2 9", "expected 'class cx cy w h'"),
    ("cat 0.5 0.5 0.2 0.2", "expected 'class cx cy w h'"),
])
def test_bad_label_lines_name_file_and_line(tmp_path, line, needle):
    p = tmp_path / "bad.txt"
    p.write_text("0 0.5 0.5 0.1 0.1\n" + line + "\n")
    with pytest.raises(dn.CfgParseError) as e:
        _core.load_labels(str(p), 4)
    assert f"{p}:2:" in str(e.value) and needle in str(e.value)


def make_set(tmp_path, n=6, size=(96, 64)):
    """Black images with one white rectangle each, labelled in Darknet format."""
    img_dir, lab_dir = tmp_path / "JPEGImages", tmp_path / "labels"
    img_dir.mkdir()
    lab_dir.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        w, h = size
        a = np.zeros((h, w, 3), np.uint8)
        bw, bh = rng.integers(w // 5, w // 2), rng.integers(h // 5, h // 2)
        x0, y0 = rng.integers(0, w - bw), rng.integers(0, h - bh)
        a[y0:y0 + bh, x0:x0 + bw] = 255
        p = img_dir / f"{i}.png"
        Image.fromarray(a).save(p)
        (lab_dir / f"{i}.txt").write_text(f"{i % 3} {(x0 + bw / 2) / w} {(y0 + bh / 2) / h} {bw / w} {bh / h}\n")
        paths.append(str(p))
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(paths) + "\n")
    return str(lst)


def bright_box(img):
    """Relative (cx, cy, w, h) of the pixels brighter than 0.75 in a 3 x H x W image."""
    m = img.mean(0) > .75
    ys, xs = np.nonzero(m)
    H, W = m.shape
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return np.array([(x0 + x1) / 2 / W, (y0 + y1) / 2 / H, (x1 - x0) / W, (y1 - y0) / H])


def test_loader_without_augmentation_keeps_boxes(tmp_path):
    ld = _core.Loader(make_set(tmp_path), batch=4, classes=3, max_boxes=5, augment=False)
    assert ld.size == 6
    images, truth = ld.next(96, 64)
    assert images.shape == (4, 3, 64, 96) and truth.shape == (4, 5, 5)
    for b in range(4):
        np.testing.assert_allclose(bright_box(images[b]), truth[b, 0, :4], atol=2 / 64)
        assert np.all(truth[b, 1:] == 0)


def test_augmented_boxes_follow_the_pixels(tmp_path):
    ld = _core.Loader(make_set(tmp_path), batch=8, classes=3, max_boxes=5, augment=True,
                      jitter=.3, hue=0, saturation=1, exposure=1, seed=5)
    for _ in range(3):
        images, truth = ld.next(80, 80)
        for b in range(8):
            t = truth[b, 0]
            assert np.all(t[:4] >= 0) and np.all(t[:4] <= 1) and t[2] > 0
            np.testing.assert_allclose(bright_box(images[b]), t[:4], atol=3 / 80)


@pytest.mark.parametrize("placement,resize", [(1, 1.), (1, 1.5), (1, .7), (2, 1.), (2, 1.5)])
def test_alexeyab_placements_boxes_follow_the_pixels(tmp_path, placement, resize):
    """AlexeyAB's crop (1: stretched, 2: widened to the input's aspect, his
    letter_box=1), with [yolo] resize: the labels follow the pixels."""
    ld = _core.Loader(make_set(tmp_path), batch=8, classes=3, max_boxes=5, augment=True, jitter=.3, hue=0,
                      saturation=1, exposure=1, seed=7, placement=placement, resize=resize)
    seen_aspects = []
    for _ in range(3):
        images, truth = ld.next(80, 80)
        for b in range(8):
            t = truth[b, 0]
            if t[2] == 0:  # the crop missed the box: the image must have no white either
                assert not np.any(images[b].mean(0) > .75)
                continue
            np.testing.assert_allclose(bright_box(images[b]), t[:4], atol=3 / 80)
            seen_aspects.append(t[2] / t[3])
    assert seen_aspects


def test_letterbox_crop_keeps_the_aspect(tmp_path):
    """With placement 2 and no jitter the 96 x 64 image keeps its aspect on an
    80 x 80 input (bands above and below); with 1 it is stretched to fill it."""
    lst = make_set(tmp_path, n=2)
    for placement, want in ((2, 64 / 96), (1, 1.)):
        ld = _core.Loader(lst, batch=2, classes=3, max_boxes=5, augment=True, jitter=0, hue=0,
                          saturation=1, exposure=1, flip=False, placement=placement)
        images, truth = ld.next(80, 80)
        labels = [_core.load_labels(p.replace("JPEGImages", "labels").replace(".png", ".txt"), 3)[0]
                  for p in open(lst).read().split()]
        for b in range(2):
            k = [i for i, l in enumerate(labels) if int(l[0]) == int(truth[b, 0, 4])][0]
            ratio = (truth[b, 0, 3] / truth[b, 0, 2]) / (labels[k][4] / labels[k][3])  # h/w relative to the image's
            assert ratio == pytest.approx(want, abs=.03)


def test_loader_letterbox_without_augmentation(tmp_path):
    ld = _core.Loader(make_set(tmp_path), batch=4, classes=3, max_boxes=5, augment=False, letterbox=True)
    images, truth = ld.next(96, 96)  # 96 x 64 images: 16-pixel grey bands above and below
    for b in range(4):
        assert np.allclose(images[b, :, :16], .5) and np.allclose(images[b, :, -16:], .5)
        np.testing.assert_allclose(bright_box(images[b]), truth[b, 0, :4], atol=2 / 96)


def test_loader_is_deterministic_and_size_independent_of_timing(tmp_path):
    lst = make_set(tmp_path)
    a = _core.Loader(lst, batch=3, classes=3, max_boxes=4, seed=11)
    b = _core.Loader(lst, batch=3, classes=3, max_boxes=4, seed=11)
    c = _core.Loader(lst, batch=3, classes=3, max_boxes=4, seed=12)
    a1, a2 = a.next(64, 64), a.next(64, 64)
    b1 = b.next(32, 32)  # a different size first: batch 0 at 32, then batch 1 at 64
    b2 = b.next(64, 64)
    np.testing.assert_array_equal(a2[0], b2[0])
    np.testing.assert_array_equal(a2[1], b2[1])
    assert not np.array_equal(a1[0], c.next(64, 64)[0])


def test_hsv_distortion_changes_colours_not_boxes(tmp_path):
    lst = make_set(tmp_path)
    plain = _core.Loader(lst, batch=4, classes=3, max_boxes=2, jitter=.2, hue=0, saturation=1, exposure=1, seed=3)
    hsv = _core.Loader(lst, batch=4, classes=3, max_boxes=2, jitter=.2, hue=.1, saturation=1.5, exposure=1.5, seed=3)
    (ia, ta), (ib, tb) = plain.next(64, 64), hsv.next(64, 64)
    np.testing.assert_array_equal(ta, tb)
    assert ib.min() >= 0 and ib.max() <= 1


def test_bad_images_are_skipped_with_a_count(tmp_path):
    lst = make_set(tmp_path, n=4)
    paths = open(lst).read().split()
    broken = tmp_path / "JPEGImages" / "broken.png"
    broken.write_bytes(b"not an image")
    open(lst, "w").write("\n".join(paths + [str(broken)] * 4) + "\n")
    ld = _core.Loader(lst, batch=8, classes=3, max_boxes=2, seed=1)
    ld.next(32, 32)
    assert ld.skipped > 0
    strict = _core.Loader(lst, batch=8, classes=3, max_boxes=2, seed=1, max_skips=0)
    with pytest.raises(dn.DarknetError, match="too many bad images"):
        strict.next(32, 32)


def test_missing_list_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        _core.Loader(str(tmp_path / "nope.txt"), batch=1, classes=1)
