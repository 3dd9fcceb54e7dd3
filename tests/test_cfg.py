"""cfg parser: syntax, errors naming file and line, warnings for unknown
options; the project's cfgs match the standard architectures; every reference
cfg loads and runs a forward pass."""
import glob
import os
import re

import numpy as np
import pytest

import darknet_py as dn
from conftest import REF_CFG, ROOT, SEED_CFG

ARCH_KEYS = {"filters", "size", "stride", "pad", "layers", "from", "mask", "classes", "num",
             "anchors", "activation", "batch_normalize", "coords", "softmax", "ternary"}


def read_sections(path):
    """Minimal independent reader: [(name, {key: value})] with whitespace removed."""
    out = []
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            out.append((line.strip("[]"), {}))
        else:
            k, v = line.split("=", 1)
            out[-1][1][k.strip()] = re.sub(r"\s+", "", v)
    return out


def architecture(path):
    return [(name, {k: v for k, v in opts.items() if k in ARCH_KEYS})
            for name, opts in read_sections(path)[1:]]


def test_syntax_comments_spaces(make_cfg):
    p = make_cfg("""
        # comment
        ; another comment
        [net]
        width = 8
          height=6
        channels = 3

        [convolutional]
        filters = 4   
        size=3
        pad=1
        activation = leaky
        """)
    net = dn.Network(p)
    assert net.input_shape == (1, 3, 6, 8)
    assert net.layers[0]["output_shape"] == (4, 6, 8)
    assert net.layers[0]["activation"] == "leaky"


@pytest.mark.parametrize("text,line,needle", [
    ("[net]\nwidth=8\nheight=8\nchannels=3\n[bogus]\nx=1\n", 5, "unknown section [bogus]"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=abc\n", 6, "expected an integer"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nactivation=nope\n", 7, "unknown activation"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nsize=3\nstride=0\n", 5, "must be positive"),
    ("[net]\nwidth=8\nheight=x\nchannels=3\n", 3, "expected an integer"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters 4\n", 6, "expected key=value"),
    ("width=8\n[net]\n", 1, "option before any [section]"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=9\n", 5, "not positive"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\nlearning_rate=1e\n", 5, "expected a number"),
    ("[convolutional]\nfilters=4\n", 1, "first section must be [net]"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\npolicy=steps\nsteps=1,2\nscales=.1\n", 7, "steps has 2 entries"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\ngroups=3\n", 7, "groups=3"),
])
def test_errors_name_file_and_line(make_cfg, text, line, needle):
    p = make_cfg(text)
    with pytest.raises(dn.CfgParseError if "positive" not in needle else dn.DarknetError) as e:
        dn.Network(p)
    msg = str(e.value)
    assert f"{p}:{line}:" in msg or (f"{p}:" in msg and needle in msg), msg
    assert needle in msg, msg


def test_errors_are_value_errors(make_cfg):
    with pytest.raises(ValueError):
        dn.Network(make_cfg("[net]\nwidth=8\nheight=8\nchannels=3\n[nope]\n"))


def test_missing_cfg_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        dn.Network(str(tmp_path / "missing.cfg"))


def test_unknown_option_warns_with_line(make_cfg, capfd):
    p = make_cfg("[net]\nwidth=8\nheight=8\nchannels=3\nmosaic=1\n[convolutional]\nfilters=2\nmy_fork_key=3\n")
    net = dn.Network(p)
    err = capfd.readouterr().err
    # an AlexeyAB key that is not implemented says so and what differs
    assert f"{p}:5: [net] mosaic=1 (AlexeyAB's 4-image mosaic augmentation) is not implemented" in err
    assert f"{p}:8: unused option 'my_fork_key = 3' in [convolutional]" in err
    assert net.layers[0]["filters"] == 2


def test_first_duplicate_wins_and_later_is_warned(make_cfg, capfd):
    p = make_cfg("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=2\nfilters=5\n")
    assert dn.Network(p).layers[0]["filters"] == 2
    assert f"{p}:7: unused option 'filters = 5'" in capfd.readouterr().err


def test_ternary_flag_is_kept(make_cfg):
    p = make_cfg({"width": 8, "height": 8, "channels": 3},
                 ("convolutional", {"filters": 2, "ternary": 1}),
                 ("convolutional", {"filters": 2, "ternary": 0}))
    assert [l["ternary"] for l in dn.Network(p).layers] == [True, False]


PROJECT_VS_REF = [("yolov2-voc.cfg", "yolov2-voc.cfg"), ("yolov2-tiny-voc.cfg", "yolov2-tiny-voc.cfg"),
                  ("yolov3-voc.cfg", "yolov3-voc.cfg")]


@pytest.mark.parametrize("ours,ref", PROJECT_VS_REF)
def test_project_cfgs_match_standard_architectures(ours, ref):
    ref_path = os.path.join(REF_CFG, ref)
    if not os.path.exists(ref_path):
        pytest.skip("reference cfgs not present")
    assert architecture(os.path.join(ROOT, "cfg", ours)) == architecture(ref_path)


def test_yolov3_tiny_voc_matches_seed():
    ref_path = os.path.join(SEED_CFG, "yolov3-tiny-voc.cfg")
    if not os.path.exists(ref_path):
        pytest.skip("seed cfgs not present")
    strip = lambda a: [(n, {k: v for k, v in o.items() if k != "ternary"}) for n, o in a]
    assert strip(architecture(os.path.join(ROOT, "cfg", "yolov3-tiny-voc.cfg"))) == strip(architecture(ref_path))


REF_CFGS = sorted(glob.glob(os.path.join(REF_CFG, "*.cfg")) + glob.glob(os.path.join(SEED_CFG, "*.cfg")))


@pytest.mark.parametrize("path", REF_CFGS or ["none"], ids=os.path.basename)
def test_reference_cfg_loads_and_runs(path):
    if path == "none":
        pytest.skip("reference cfgs not present")
    net = dn.Network(path, batch=1)
    _, c, h, w = net.input_shape
    has_fixed = any(l["type"] in ("connected", "detection") for l in net.layers)
    if not has_fixed:  # fully convolutional: run small
        net.resize(64, 64)
        h = w = 64
    x = np.random.default_rng(0).random((1, c, h, w), dtype=np.float32)
    y = net.forward(x)
    assert np.all(np.isfinite(y))
    assert y.shape[1:] == net.layers[-1]["output_shape"]


def test_input_placement_follows_the_dialect(make_cfg):
    """pjreddie's cfgs letterbox, AlexeyAB's stretch unless [net] letter_box=1;
    the setter overrides, None goes back to the cfg's choice."""
    base = "[net]\nwidth=32\nheight=32\nchannels=3\n{net}\n[convolutional]\nfilters=18\nsize=1\n[yolo]\nmask=0,1,2\nnum=3\nclasses=1\n{yolo}\n"
    cases = [("", "", False, True), ("", "scale_x_y=1.05", True, False), ("", "nms_kind=greedynms", True, False),
             ("letter_box=1", "iou_loss=ciou", True, True), ("letter_box=0", "", True, False),
             ("mosaic=0", "", True, False)]
    for net_opt, yolo_opt, alexeyab, letterbox in cases:
        net = dn.Network(make_cfg(base.format(net=net_opt, yolo=yolo_opt)))
        assert (net.alexeyab, net.letterbox) == (alexeyab, letterbox), (net_opt, yolo_opt)
        net.letterbox = not letterbox
        assert net.letterbox == (not letterbox)
        net.letterbox = None
        assert net.letterbox == letterbox
    with pytest.raises(dn.CfgParseError, match=r"net\d+\.cfg:5: \[net\] letter_box must be 0 or 1"):
        dn.Network(make_cfg(base.format(net="letter_box=2", yolo="")))
