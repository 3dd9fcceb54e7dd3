"""darknet_py.voc: VOC XML parsing, Darknet label arithmetic, label paths, and the
VOCdevkit -> Darknet conversion (on hand-made devkits and on the voc-mini subset)."""
import os

import pytest

from conftest import VOC_ROOT
from darknet_py import voc
from darknet_py.names import VOC_NAMES


def xml_text(filename, width, height, objects, size=True):
    """VOC XML; objects are (name, xmin, ymin, xmax, ymax, difficult)."""
    parts = ["<annotation>", "<folder>VOC2007</folder>", f"<filename>{filename}</filename>"]
    if size:
        parts.append(f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>")
    for name, x0, y0, x1, y1, diff in objects:
        parts.append(f"<object><name>{name}</name><pose>Left</pose><truncated>1</truncated>"
                     f"<difficult>{diff}</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                     f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def parse_label_file(path):
    with open(path) as f:
        return [(int(p[0]), *map(float, p[1:])) for p in (l.split() for l in f) if p]


def assert_labels(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g[0] == e[0]
        assert g[1:] == pytest.approx(e[1:], abs=1e-6)


# ---------------------------------------------------------------------------- parsing

def test_parse_annotation_fields(tmp_path):
    p = tmp_path / "a.xml"
    p.write_text(xml_text("a.jpg", 200, 100, [("dog", 11, 21, 60, 80, 0), ("cat", 5, 6, 7, 8, 1)]))
    ann = voc.parse_annotation(p)
    assert (ann["filename"], ann["width"], ann["height"]) == ("a.jpg", 200, 100)
    assert [o["name"] for o in ann["objects"]] == ["dog", "cat"]
    assert ann["objects"][0]["bbox"] == (11, 21, 60, 80)
    assert ann["objects"][0]["difficult"] is False and ann["objects"][1]["difficult"] is True
    assert ann["objects"][0]["truncated"] is True


def test_label_values_by_hand(tmp_path):
    # 200 x 100 image, dog (class 11) at 1-based (11, 21) - (60, 80):
    #   cx = ((11 + 60) / 2 - 1) / 200 = 34.5 / 200 = 0.1725
    #   cy = ((21 + 80) / 2 - 1) / 100 = 49.5 / 100 = 0.495
    #   w  = (60 - 11) / 200 = 0.245,  h = (80 - 21) / 100 = 0.59
    p = tmp_path / "a.xml"
    p.write_text(xml_text("a.jpg", 200, 100, [("dog", 11, 21, 60, 80, 0)]))
    normal, difficult = voc.label_lines(voc.parse_annotation(p, VOC_NAMES))
    assert normal == ["11 0.172500 0.495000 0.245000 0.590000"]
    assert difficult == []
    assert voc.box_to_darknet(200, 100, (11, 21, 60, 80)) == pytest.approx((0.1725, 0.495, 0.245, 0.59))


def test_boxes_are_clipped_to_the_image(tmp_path):
    p = tmp_path / "a.xml"
    p.write_text(xml_text("a.jpg", 200, 100, [("dog", 0, -5, 250, 80, 0),
                                              ("cat", 300, 10, 320, 20, 0)]))
    ann = voc.parse_annotation(p)
    # the dog is clipped to [1, 200] x [1, 100]; the cat lies wholly outside and is dropped
    assert [o["bbox"] for o in ann["objects"]] == [(1, 1, 200, 80)]


@pytest.mark.parametrize("text, what", [
    ("<annotation><size><width>10</width>", "malformed XML"),
    (xml_text("a.jpg", 10, 10, [], size=False), "missing <size>"),
    (xml_text("a.jpg", 0, 10, []), "must be positive"),
    (xml_text("a.jpg", 10, 10, [("dog", 5, 5, 2, 8, 0)]), "xmax < xmin"),
    (xml_text("a.jpg", 10, 10, [("dog", "x", 5, 2, 8, 0)]), "not a number"),
    (xml_text("a.jpg", 10, 10, [("unicorn", 1, 1, 5, 5, 0)]), "unknown class name 'unicorn'"),
])
def test_bad_annotations_name_the_file(tmp_path, text, what):
    p = tmp_path / "broken_007.xml"
    p.write_text(text)
    with pytest.raises(ValueError) as e:
        voc.parse_annotation(p, VOC_NAMES)
    assert str(p) in str(e.value) and what in str(e.value)


def test_missing_coordinate_is_reported(tmp_path):
    p = tmp_path / "b.xml"
    p.write_text("<annotation><size><width>10</width><height>10</height></size><object>"
                 "<name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax></bndbox>"
                 "</object></annotation>")
    with pytest.raises(ValueError, match=r"b\.xml: object 0 \(dog\): missing <ymax>"):
        voc.parse_annotation(p)


# ---------------------------------------------------------------------------- label paths

@pytest.mark.parametrize("image, label", [
    ("/d/VOC2007/JPEGImages/000001.jpg", "/d/VOC2007/labels/000001.txt"),
    ("/d/coco/images/train2014/x.jpeg", "/d/coco/labels/train2014/x.txt"),
    ("/d/a/images/b.png", "/d/a/labels/b.txt"),
    ("/d/a/JPEGImages/b.JPG", "/d/a/labels/b.txt"),
    ("/d/a/JPEGImages/b.JPEG", "/d/a/labels/b.txt"),
    ("/d/a/images/b.bmp", "/d/a/labels/b.txt"),
    ("/d/flat/b.jpg", "/d/flat/b.txt"),                           # no images dir: beside it
    ("/d/images/x/images/b.jpg", "/d/labels/x/images/b.txt"),     # first occurrence only
    ("/d/myimages/b.jpg", "/d/myimages/b.txt"),                   # whole components only
    ("/d/a.b/images/c.d.jpg", "/d/a.b/labels/c.d.txt"),
])
def test_label_path(image, label):
    assert voc.label_path(image) == label


def test_label_path_rejects_non_images():
    with pytest.raises(ValueError, match="b.txt"):
        voc.label_path("/d/images/b.txt")
    assert voc.difficult_path("/d/JPEGImages/b.jpg") == "/d/labels/b.difficult.txt"


# ---------------------------------------------------------------------------- conversion

def make_devkit(root, year="2007", images=None, sets=None):
    """A tiny VOCdevkit: images maps id -> (width, height, objects)."""
    d = root / "VOCdevkit" / f"VOC{year}"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    for i, (w, h, objs) in images.items():
        (d / "JPEGImages" / f"{i}.jpg").write_bytes(b"not really a jpeg " + i.encode())
        (d / "Annotations" / f"{i}.xml").write_text(xml_text(f"{i}.jpg", w, h, objs))
    for s, ids in sets.items():
        (d / "ImageSets" / "Main" / f"{s}.txt").write_text("".join(i + "\n" for i in ids))
    return root / "VOCdevkit"


def test_convert_small_devkit(tmp_path):
    devkit = make_devkit(tmp_path, images={
        "a1": (200, 100, [("dog", 11, 21, 60, 80, 0), ("person", 1, 1, 100, 50, 1)]),
        "a2": (100, 100, []),
        "a3": (100, 50, [("cat", 2, 2, 3, 4, 0)]),
    }, sets={"train": ["a1", "a2"], "val": ["a3"]})
    out = tmp_path / "out"
    w = voc.convert(devkit, out, progress=False)
    assert set(w) == {"2007_train", "2007_val", "train", "data", "names"}
    img = lambda i: str(out / "VOC2007" / "JPEGImages" / f"{i}.jpg")
    assert (out / "2007_train.txt").read_text() == img("a1") + "\n" + img("a2") + "\n"
    assert (out / "2007_val.txt").read_text() == img("a3") + "\n"
    # no test set: 2007_val is the valid list, so train.txt leaves it out
    assert (out / "train.txt").read_text().split() == [img("a1"), img("a2")]
    # images are links to the originals
    assert os.path.islink(img("a1"))
    assert os.path.realpath(img("a1")) == str((devkit / "VOC2007" / "JPEGImages" / "a1.jpg").resolve())
    labels = out / "VOC2007" / "labels"
    # the difficult person (class 14) goes to a1.difficult.txt, not to a1.txt:
    #   person: cx = ((1 + 100) / 2 - 1) / 200 = 0.2475, cy = ((1 + 50) / 2 - 1) / 100 = 0.245,
    #           w = 99 / 200 = 0.495, h = 49 / 100 = 0.49
    assert (labels / "a1.txt").read_text() == "11 0.172500 0.495000 0.245000 0.590000\n"
    assert (labels / "a1.difficult.txt").read_text() == "14 0.247500 0.245000 0.495000 0.490000\n"
    # an image without objects still has an empty label file, and no difficult file
    assert (labels / "a2.txt").read_text() == ""
    assert not (labels / "a2.difficult.txt").exists()
    # cat (class 7) in 100 x 50: cx = (2.5 - 1) / 100, cy = (3 - 1) / 50, w = 1 / 100, h = 2 / 50
    assert_labels(parse_label_file(labels / "a3.txt"), [(7, 0.015, 0.04, 0.01, 0.04)])
    data = dict(l.split("=", 1) for l in (out / "voc.data").read_text().split())
    assert data == {"classes": "20", "train": str(out / "train.txt"),
                    "valid": str(out / "2007_val.txt"), "names": str(out / "voc.names"),
                    "backup": str(out / "backup") + os.sep}
    assert (out / "voc.names").read_text().split() == VOC_NAMES
    assert (out / "backup").is_dir()
    # converting again over the same output is fine and gives the same result
    w2 = voc.convert(devkit, out, progress=False)
    assert w2 == w and (labels / "a1.txt").read_text().startswith("11 ")


def test_convert_years_sets_and_custom_classes(tmp_path):
    objs = [("b", 1, 1, 10, 10, 0)]
    make_devkit(tmp_path, "2007", {"t1": (10, 10, objs), "t2": (10, 10, objs), "v1": (10, 10, objs)},
                {"train": ["t1"], "val": ["v1"], "test": ["t2"]})
    devkit = make_devkit(tmp_path, "2012", {"x1": (10, 10, objs), "x2": (10, 10, objs)},
                         {"train": ["x1"], "val": ["x2"]})
    out = tmp_path / "out"
    w = voc.convert(devkit, out, classes=["a", "b"], data_name="mine.data", progress=False)
    assert set(w) == {"2007_train", "2007_val", "2007_test", "2012_train", "2012_val",
                      "train", "data", "names"}
    # train.txt = every train and val list, never the test list
    names = [os.path.basename(p) for p in (out / "train.txt").read_text().split()]
    assert names == ["t1.jpg", "v1.jpg", "x1.jpg", "x2.jpg"]
    data = (out / "mine.data").read_text()
    assert f"valid={out / '2007_test.txt'}\n" in data and "classes=2\n" in data
    assert f"names={out / 'mine.names'}\n" in data
    assert (out / "VOC2012" / "labels" / "x1.txt").read_text().startswith("1 ")
    # only the years asked for
    out2 = tmp_path / "out2"
    assert set(voc.convert(devkit, out2, years=[2012], classes=["a", "b"], progress=False)) == \
        {"2012_train", "2012_val", "train", "data", "names"}
    assert f"valid={out2 / '2012_val.txt'}" in (out2 / "voc.data").read_text()
    assert [os.path.basename(p) for p in (out2 / "train.txt").read_text().split()] == ["x1.jpg"]


def test_convert_errors(tmp_path):
    devkit = make_devkit(tmp_path, images={"a1": (10, 10, [("dragon", 1, 1, 5, 5, 0)])},
                         sets={"train": ["a1", "a9"]})
    with pytest.raises(ValueError, match=r"a1\.xml.*unknown class name 'dragon'"):
        voc.convert(devkit, tmp_path / "out", progress=False)
    with pytest.raises(FileNotFoundError, match="VOC2010"):
        voc.convert(devkit, tmp_path / "out", years=["2010"], progress=False)
    with pytest.raises(FileNotFoundError, match=r"a9\.xml"):
        voc.convert(devkit, tmp_path / "out", classes=["dragon"], progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no VOC<year> folders"):
        voc.convert(tmp_path / "empty", tmp_path / "out", progress=False)


# ---------------------------------------------------------------------------- voc-mini

@pytest.fixture(scope="module")
def voc_mini(tmp_path_factory):
    devkit = os.path.join(VOC_ROOT, "VOCdevkit")
    if not os.path.isdir(os.path.join(devkit, "VOC2007")):
        pytest.skip(f"VOC subset not found at {VOC_ROOT}")
    out = tmp_path_factory.mktemp("vocmini")
    return devkit, out, voc.convert(devkit, out, progress=False)


def count_lines(path):
    with open(path) as f:
        return sum(1 for l in f if l.strip())


def test_voc_mini_lists(voc_mini):
    devkit, out, w = voc_mini
    assert set(w) == {"2007_train", "2007_val", "train", "data", "names"}
    assert count_lines(w["2007_train"]) == 1000
    assert count_lines(w["2007_val"]) == 300
    # no test list here, so 2007_val is the valid list and train.txt is 2007_train alone
    assert count_lines(w["train"]) == 1000
    with open(w["train"]) as f:
        paths = f.read().split()
    with open(w["2007_val"]) as f:
        val = f.read().split()
    assert len(set(paths)) == 1000 and not set(paths) & set(val)
    paths += val
    for p in paths[::97]:
        assert os.path.isabs(p) and os.path.islink(p)
        assert os.path.realpath(p) == os.path.realpath(
            os.path.join(devkit, "VOC2007", "JPEGImages", os.path.basename(p)))
        assert os.path.isfile(voc.label_path(p))
    # the subset has no difficult flags, so no difficult files
    assert not [n for n in os.listdir(out / "VOC2007" / "labels") if n.endswith(".difficult.txt")]
    assert f"valid={w['2007_val']}\n" in open(w["data"]).read()


def test_voc_mini_label_values(voc_mini):
    _, out, _ = voc_mini
    labels = out / "VOC2007" / "labels"
    # 000007.xml: 500 x 333, car (6) at 141,50 - 499,329
    assert_labels(parse_label_file(labels / "000007.txt"), [
        (6, ((141 + 499) / 2 - 1) / 500, ((50 + 329) / 2 - 1) / 333, (499 - 141) / 500, (329 - 50) / 333)])
    assert (labels / "000007.txt").read_text() == "6 0.638000 0.566066 0.716000 0.837838\n"
    # 000009.xml: 500 x 375, horse (12) 69,172-269,329; person (14) 150,141-228,283,
    # 285,201-326,330 and 258,198-296,328
    def row(c, x0, y0, x1, y1, w=500, h=375):
        return (c, ((x0 + x1) / 2 - 1) / w, ((y0 + y1) / 2 - 1) / h, (x1 - x0) / w, (y1 - y0) / h)
    assert_labels(parse_label_file(labels / "000009.txt"), [
        row(12, 69, 172, 269, 329), row(14, 150, 141, 228, 283),
        row(14, 285, 201, 326, 330), row(14, 258, 198, 296, 328)])
    # 000020.xml (val): 375 x 500, car at 33,148 - 370,415
    assert_labels(parse_label_file(labels / "000020.txt"), [row(6, 33, 148, 370, 415, 375, 500)])
