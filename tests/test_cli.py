"""The ./darknet binary: detector test (image argument and stdin), detect,
partial, and clear errors."""
import os
import struct

import numpy as np
import pytest
from PIL import Image

import darknet_py as dn
from conftest import ROOT, run_darknet

TINY = os.path.join(ROOT, "cfg", "yolov2-tiny-voc-small.cfg")


@pytest.fixture
def image(tmp_path):
    a = (np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8)
    p = tmp_path / "img.jpg"
    Image.fromarray(a).save(p)
    return str(p)


@pytest.fixture
def weights(tmp_path):
    net = dn.Network(TINY, seed=3)
    last = len(net.layers) - 2  # the final 1x1 conv: make the objectness of anchor 0 high
    p = net.params(last)
    p["weights"][:] = 0
    p["biases"][:] = -5
    p["biases"][4] = 5       # objectness of anchor 0 (entry 4 of 25)
    p["biases"][5 + 11] = 8  # class 11 ("dog") of anchor 0
    path = tmp_path / "tiny.weights"
    net.save_weights(path)
    return str(path)


def test_detector_test_prints_and_draws(tmp_path, image, weights):
    out = tmp_path / "pred"
    r = run_darknet("detector", "test", os.path.join(ROOT, "cfg", "voc.data"), TINY, weights, image,
                    "-thresh", "0.5", "-out", out)
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{image}: Predicted in ")
    dets = [l for l in lines[1:] if l.startswith("dog: ")]
    assert len(dets) >= 1 and all("left_x:" in l for l in dets)
    assert all(not l.split(":")[0] in ("cat", "person") for l in lines[1:])
    png = Image.open(f"{out}.png")
    assert png.size == (160, 120)


def test_alexeyab_options_leave_the_arguments_alone(tmp_path, image, weights):
    """AlexeyAB's scripts pass `-i 0` (the GPU index; a CPU build ignores it,
    as Darknet's does) and display/stream options: none of them is taken for
    the image argument, and those that would change the run get a note."""
    if dn._core.cuda_compiled():
        pytest.skip("a CUDA build takes -i N as -gpus N")
    data = os.path.join(ROOT, "cfg", "voc.data")
    r = run_darknet("detector", "test", data, TINY, weights, "-i", "0", "-dont_show", "-ext_output",
                    "-mjpeg_port", "8090", "-letter_box", image, "-thresh", "0.5", "-out", tmp_path / "p")
    assert r.stdout.startswith(f"{image}: Predicted in ") and "dog: " in r.stdout
    assert r.stderr.strip() == "darknet: -mjpeg_port is not supported here: ignored"
    r = run_darknet("detector", "map", data, TINY, weights, "-dont_show", "-json_port", "8070", check=False)
    assert "-json_port is not supported here: ignored" in r.stderr and "8070" not in r.stderr


def test_names_default_to_voc_or_coco(make_cfg, tmp_path, image):
    """Without a .names file a 20-class model speaks VOC's names and an
    80-class one COCO's (pjreddie's `./darknet detect cfg/yolov3.cfg ...`
    prints "dog: 99%"), in the binary and in Python, in Darknet's order."""
    from darknet_py.names import COCO_NAMES, VOC_NAMES, default_names
    from conftest import REF_CFG
    for n, ref in ((20, "voc.names"), (80, "coco.names")):
        path = os.path.join(REF_CFG, ref)
        if os.path.exists(path):
            assert default_names(n) == [l.strip() for l in open(path) if l.strip()]
    assert default_names(80) == COCO_NAMES and default_names(20) == VOC_NAMES and default_names(3)[2] == "class_2"
    cfg = make_cfg({"width": 32, "height": 32, "channels": 3},
                   ("convolutional", {"size": 1, "stride": 1, "filters": 85, "activation": "linear"}),
                   ("region", {"anchors": "2,2", "num": 1, "classes": 80, "coords": 4, "softmax": 1}))
    net = dn.Network(cfg)
    p = net.params(0)
    p["weights"][:] = 0
    p["biases"][:] = 0
    p["biases"][4] = 5         # objectness
    p["biases"][5 + 16] = 12   # class 16: "dog" in COCO's order
    weights = tmp_path / "coco.weights"
    net.save_weights(weights)
    r = run_darknet("detect", cfg, weights, image, "-thresh", "0.5", "-out", tmp_path / "p")
    lines = [l for l in r.stdout.splitlines()[1:] if l.strip()]
    assert lines and all(l.startswith("dog: ") for l in lines)
    assert {d.label for d in dn.Network(cfg, weights).detect(image, thresh=0.5)} == {"dog"}


def test_detector_test_reads_paths_from_stdin(tmp_path, image, weights):
    r = run_darknet("detector", "test", os.path.join(ROOT, "cfg", "voc.data"), TINY, weights,
                    "-out", tmp_path / "p", input=f"{image}\n{image}\n")
    assert r.stdout.count("Predicted in") == 2
    assert r.stdout.count("Enter Image Path:") == 3


def test_detect_shortcut(tmp_path, image, weights):
    r = run_darknet("detect", TINY, weights, image, "-out", tmp_path / "p", "-thresh", "0.5")
    assert "dog: " in r.stdout


def test_partial_writes_first_layers(tmp_path, weights):
    out = tmp_path / "tiny.conv.4"
    run_darknet("partial", TINY, weights, out, 4)
    net = dn.Network(TINY)
    n4 = sum(l["nparams"] for l in net.layers[:4])
    assert os.path.getsize(out) == 20 + 4 * n4
    raw = open(weights, "rb").read()
    assert open(out, "rb").read() == raw[:20 + 4 * n4]


def test_errors_are_messages_not_crashes(tmp_path, image):
    bad = tmp_path / "bad.cfg"
    bad.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=x\n")
    r = run_darknet("detector", "test", os.path.join(ROOT, "cfg", "voc.data"), bad, "", image, check=False)
    assert r.returncode == 1 and f"{bad}:6:" in r.stderr
    r = run_darknet("detector", "test", os.path.join(ROOT, "cfg", "voc.data"), TINY, tmp_path / "none.weights",
                    image, check=False)
    assert r.returncode == 1 and "none.weights" in r.stderr
    r = run_darknet("detector", "test", os.path.join(ROOT, "cfg", "voc.data"), TINY, "", tmp_path / "no.jpg",
                    check=False)
    assert r.returncode == 1 and "no.jpg" in r.stderr
    assert run_darknet("nonsense", check=False).returncode == 1
