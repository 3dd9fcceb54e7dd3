"""darknet_py.detect() and DetectResult against `./darknet detector test`:
the sources it takes, the same detections as Network.detect, the drawn image
pixel for pixel as predictions.png, AlexeyAB's result.json and -save_labels
files as the binary writes them, and the drawing against a NumPy reference."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import darknet_py as dn
from darknet_py import _core
from darknet_py.detections import DetectResult, Detection
from conftest import ROOT, run_darknet

TINY = os.path.join(ROOT, "cfg", "yolov2-tiny-voc-small.cfg")
VOC_DATA = os.path.join(ROOT, "cfg", "voc.data")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny 20-class model whose anchor 0 says "dog" everywhere (many boxes
    survive NMS), and a folder images/ of three random images."""
    d = tmp_path_factory.mktemp("detect")
    net = dn.Network(TINY, seed=3)
    p = net.params(len(net.layers) - 2)  # the final 1x1 conv
    p["weights"][:] = 0
    p["biases"][:] = -5
    p["biases"][4] = 5        # objectness of anchor 0
    p["biases"][5 + 11] = 8   # class 11, dog
    p["biases"][5 + 7] = 7.5  # class 7, cat: a second class on the same boxes
    p["biases"][2:4] = 1      # boxes of a few cells: those at the borders are clipped
    weights = d / "tiny.weights"
    net.save_weights(weights)
    (d / "images").mkdir()
    paths = []
    for i in range(3):
        a = (np.random.default_rng(i).random((100 + 20 * i, 160, 3)) * 255).astype(np.uint8)
        paths.append(str(d / "images" / f"img{i}.jpg"))
        Image.fromarray(a).save(paths[-1])
    (d / "images" / "notes.md").write_text("not an image\n")
    return d, str(weights), paths


def run(model, source, **kw):
    _, weights, _ = model
    return dn.detect(TINY, weights, source, names=VOC_DATA, thresh=0.3, progress=False, **kw)


def test_sources(model, tmp_path):
    d, _, paths = model
    assert [r.path for r in run(model, paths[1])] == [paths[1]]
    assert [r.path for r in run(model, str(d / "images"))] == paths            # sorted, notes.md skipped
    lst = tmp_path / "list.txt"
    lst.write_text(f"{paths[2]}\n\n{paths[0]}\n")
    assert [r.path for r in run(model, lst)] == [paths[2], paths[0]]
    assert [r.path for r in run(model, str(d / "images" / "img[12].jpg"))] == paths[1:]
    arr = np.asarray(Image.open(paths[0]).convert("RGB"))
    mixed = run(model, [arr, paths[1]])
    assert [r.path for r in mixed] == [None, paths[1]] and (mixed[0].width, mixed[0].height) == (160, 100)
    with pytest.raises(FileNotFoundError, match="nothere.jpg"):
        run(model, str(tmp_path / "nothere.jpg"))
    with pytest.raises(FileNotFoundError, match=r"\*\.png: no file matches"):
        run(model, str(tmp_path / "*.png"))
    with pytest.raises(TypeError, match="source must be"):
        run(model, 3)
    with pytest.raises(ValueError, match="save_labels needs image paths"):
        run(model, arr, save_labels=True)


def test_same_detections_as_network_detect(model):
    _, weights, paths = model
    net = dn.Network(TINY, weights, names=VOC_DATA)
    results = run(model, paths)
    assert len(results) == 3
    for r, path in zip(results, paths):
        ref = net.detect(path, thresh=0.3)
        assert isinstance(r, DetectResult) and list(r) == list(ref) and len(r) > 10
        assert {d.label for d in r} == {"dog", "cat"}
        im = Image.open(path)
        assert (r.width, r.height) == im.size
        np.testing.assert_array_equal(r.boxes, [d.box for d in ref])
        np.testing.assert_array_equal(r.confidences, [d.confidence for d in ref])
        np.testing.assert_array_equal(r.class_ids, [d.class_id for d in ref])
    empty = DetectResult(width=4, height=4)
    assert empty.boxes.shape == (0, 4) and empty.confidences.shape == (0,) and empty.class_ids.dtype == np.int64


def test_plot_matches_detector_test_png(model, tmp_path):
    """The boxes Python draws are the binary's predictions.png, pixel for
    pixel (one box per detection, labelled "cat, dog", coloured by class 7)."""
    _, weights, paths = model
    out = tmp_path / "pred"
    run_darknet("detector", "test", VOC_DATA, TINY, weights, paths[2], "-thresh", "0.3", "-out", out)
    r = run(model, paths[2], save_dir=tmp_path / "saved")[0]
    drawn = r.plot()
    np.testing.assert_array_equal(drawn, _core.load_image(f"{out}.png"))
    assert (drawn != r.image()).any(axis=2).sum() > 1000
    np.testing.assert_array_equal(_core.load_image(str(tmp_path / "saved" / "img2.png")), drawn)
    r.save(tmp_path / "again.png")
    np.testing.assert_array_equal(_core.load_image(str(tmp_path / "again.png")), drawn)


def ramp(cls, classes):
    """Darknet's get_color for (r, g, b) of class cls of classes."""
    colors = np.array([[1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0]], float)
    x = cls * 123457 % classes
    ratio = x / classes * 5
    i, j = int(np.floor(ratio)), int(np.ceil(ratio))
    ratio -= i
    return [(1 - ratio) * colors[i][c] + ratio * colors[j][c] for c in (2, 1, 0)]


def test_plot_against_numpy_reference():
    grey = np.full((80, 100, 3), 128, np.uint8)
    box = (20.0, 30.0, 60.0, 70.0)
    r = DetectResult([Detection("b", 4, 0.9, box), Detection("a", 2, 0.8, box),
                      Detection("c", 1, 0.7, (80.5, 5.2, 90.9, 12.0))],
                     width=100, height=80, names=list("abcdefg"), image=grey)
    out = r.plot()
    assert out.shape == grey.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(grey, 128)  # drawn on a copy
    # the shared box: one outline in the colour of its smallest class id (2 of 7)
    want = np.round(np.array(ramp(2, 7)) * 255).astype(np.uint8)
    for x, y in [(20, 50), (60, 50), (40, 70), (20, 70), (60, 70)]:
        np.testing.assert_array_equal(out[y, x], want)
    assert np.all(out[31:70, 21:60] == 128)  # inside untouched (the label sits above the box)
    label = out[:31, 20:60]
    assert np.all(label == want, axis=2).sum() > 20 and np.all(label == 0, axis=2).sum() > 5
    # the small box: colour of class 1, edges truncated to pixels as Darknet does
    want1 = np.round(np.array(ramp(1, 7)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(out[12, 85], want1)
    np.testing.assert_array_equal(out[8, 80], want1)
    np.testing.assert_array_equal(out[8, 90], want1)
    # an empty result draws nothing
    np.testing.assert_array_equal(DetectResult(width=100, height=80, image=grey).plot(), grey)


def clipped_relative(d, w, h):
    l, t, r, b = d.box
    return [(l + r) / 2 / w, (t + b) / 2 / h, (r - l) / w, (b - t) / h]


def test_json_matches_detector_test_out(model, tmp_path):
    _, weights, paths = model
    out = tmp_path / "result.json"
    r = run_darknet("detector", "test", VOC_DATA, TINY, weights, "-thresh", "0.3", "-out", out,
                    "-dont_show", "-ext_output", input="\n".join(paths) + "\n", cwd=tmp_path)
    assert r.stdout.count("Predicted in") == 3
    assert not os.path.exists(tmp_path / "result.json.tmp")
    frames = json.loads(out.read_text())
    results = run(model, paths)
    assert [f["frame_id"] for f in frames] == [1, 2, 3]
    for f, res, i in zip(frames, results, range(1, 4)):
        py = res.to_dict(i)
        assert f["filename"] == py["filename"] == res.path
        key = lambda o: (o["class_id"], o["relative_coordinates"]["center_x"],
                         o["relative_coordinates"]["center_y"])
        got, want = sorted(f["objects"], key=key), sorted(py["objects"], key=key)
        assert len(got) == len(want) == len(res) > 10
        for g, w in zip(got, want):
            assert (g["class_id"], g["name"]) == (w["class_id"], w["name"])
            assert g["confidence"] == pytest.approx(w["confidence"], abs=1e-6)
            for k in ("center_x", "center_y", "width", "height"):
                assert g["relative_coordinates"][k] == pytest.approx(w["relative_coordinates"][k], abs=1e-6)
        # the relative box is the clipped pixel box over the image size
        d = res[0]
        o = next(o for o in py["objects"] if o["confidence"] == d.confidence)
        np.testing.assert_allclose([o["relative_coordinates"][k] for k in ("center_x", "center_y", "width", "height")],
                                   clipped_relative(d, res.width, res.height), rtol=1e-12)
    # no image read: an empty array; the drawn image keeps its pjreddie name
    empty = tmp_path / "empty.json"
    run_darknet("detector", "test", VOC_DATA, TINY, weights, "-out", empty, input="", cwd=tmp_path)
    assert json.loads(empty.read_text()) == []


def test_save_labels_match_and_train_readers_accept_them(model, tmp_path):
    _, weights, _ = model
    images = tmp_path / "set" / "images"
    images.mkdir(parents=True)
    src = Image.open(model[2][1])
    src.save(images / "a.png")
    run_darknet("detector", "test", VOC_DATA, TINY, weights, images / "a.png", "-thresh", "0.3",
                "-save_labels", "-out", tmp_path / "p")
    label = tmp_path / "set" / "labels" / "a.txt"  # Darknet's label path, folder made
    cli_lines = label.read_text().splitlines()
    label.unlink()
    res = run(model, str(images / "a.png"), save_labels=True)[0]
    py_lines = label.read_text().splitlines()
    assert sorted(cli_lines) == sorted(py_lines) == sorted(res.label_lines())
    assert len(py_lines) == len(res) > 10
    table = _core.load_labels(str(label), 20)  # what the training loader reads
    want = sorted([d.class_id] + clipped_relative(d, res.width, res.height) for d in res)
    np.testing.assert_allclose(sorted(table.tolist()), want, atol=1e-6)


def test_python_cli_detect(model, tmp_path, capsys):
    from darknet_py.__main__ import main
    _, weights, paths = model
    out = tmp_path / "r.json"
    assert main(["detect", TINY, weights, paths[0], paths[1], "--names", VOC_DATA, "--thresh", "0.3",
                 "--json", str(out), "--save-dir", str(tmp_path / "png"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    results = run(model, paths[:2])
    assert text.startswith(f"{paths[0]}: {len(results[0])} objects\n")
    assert text.count("dog: ") + text.count("cat: ") == len(results[0]) + len(results[1])
    assert json.loads(out.read_text()) == [r.to_dict(i + 1) for i, r in enumerate(results)]
    assert sorted(os.listdir(tmp_path / "png")) == ["img0.png", "img1.png"]
    assert main(["detect", TINY, weights, str(tmp_path / "none.jpg")]) == 2
    assert "none.jpg: no such image" in capsys.readouterr().err


def test_names_from_a_data_file_or_a_list(tmp_path):
    names = tmp_path / "x.names"
    names.write_text("a\nb\n")
    data = tmp_path / "x.data"
    data.write_text(f"classes = 3\nnames = {names}\n")
    from darknet_py.names import resolve_names
    assert resolve_names(str(data), 3) == ["a", "b", "class_2"]
    assert resolve_names(str(names), 2) == ["a", "b"]
    assert resolve_names(["x"], 2) == ["x", "class_1"]
    assert resolve_names(None, 20)[11] == "dog"
    with pytest.raises(FileNotFoundError, match="y.data"):
        resolve_names(str(tmp_path / "y.data"), 2)
