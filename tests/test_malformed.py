"""Malformed inputs of every kind (issue: robustness), table driven: cfg,
.data, .names, image lists, label files, images, .weights and packed ternary
files. Each case asserts the exact exception class and that the message
names the place: the file and its line, or the file and the byte offset.
tests/fuzz_regressions/ holds the inputs the fuzzers found; they go through
the same public API and must give the same kind of clean error."""
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import darknet_py as dn
from darknet_py import _core
from darknet_py.errors import (CfgParseError, DarknetIOError, DarknetUnsupportedError, DarknetValueError,
                               FormatError)
from conftest import ROOT

NET = "[net]\nwidth=16\nheight=16\nchannels=3\n"          # lines 1-4
CONV = "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
REGION = "[convolutional]\nfilters=20\nsize=1\nactivation=linear\n"   # 2*(5+5)
YOLO_CONV = "[convolutional]\nfilters=21\nsize=1\nactivation=linear\n"  # 3*(2+5)


def where(msg, path, line=None, offset=None):
    """The message names path and (when given) its line or byte offset."""
    assert str(path) in msg, msg
    if line is not None:
        assert f"{path}:{line}:" in msg, msg
    if offset is not None:
        assert f"byte offset {offset}" in msg, msg


def raises_exactly(exc, fn, *args, **kw):
    with pytest.raises(exc) as e:
        fn(*args, **kw)
    assert type(e.value) is exc, f"{type(e.value).__name__}: {e.value}"
    return str(e.value)


# ---------------------------------------------------------------- cfg files
# (id, text, exception, line (None: file only), words of the message)
CFG = [
    ("unknown-section", NET + "[bogus]\nx=1\n", CfgParseError, 5, "unknown section [bogus]"),
    ("unclosed-header", NET + "[convolutional\nfilters=2\n", CfgParseError, 5, "malformed section header"),
    ("empty-header", NET + "[]\n", CfgParseError, 5, "malformed section header"),
    ("no-equals", NET + CONV + "stride 2\n", CfgParseError, 10, "expected key=value"),
    ("empty-key", NET + CONV + "=2\n", CfgParseError, 10, "empty key"),
    ("option-before-section", "width=8\n" + NET, CfgParseError, 1, "option before any [section]"),
    ("empty-file", "", CfgParseError, None, "no [section] found"),
    ("only-comments", "# a\n; b\n\n", CfgParseError, None, "no [section] found"),
    ("first-not-net", CONV, CfgParseError, 1, "first section must be [net]"),
    ("no-layers", NET, CfgParseError, None, "no layers after [net]"),
    ("width-text", "[net]\nwidth=abc\nheight=16\nchannels=3\n" + CONV, CfgParseError, 2, "expected an integer"),
    ("width-fraction", "[net]\nwidth=1.5\nheight=16\nchannels=3\n" + CONV, CfgParseError, 2, "expected an integer"),
    ("width-overflow", "[net]\nwidth=99999999999\nheight=16\nchannels=3\n" + CONV, CfgParseError, 2,
     "expected an integer"),
    ("width-zero", "[net]\nwidth=0\nheight=16\nchannels=3\n" + CONV, CfgParseError, 1, "must be positive"),
    ("channels-negative", "[net]\nwidth=16\nheight=16\nchannels=-3\n" + CONV, CfgParseError, 1,
     "must be positive"),
    ("batch-zero", NET + "batch=0\n" + CONV, CfgParseError, 1, "batch >= subdivisions >= 1"),
    ("subdivisions-over-batch", NET + "batch=2\nsubdivisions=4\n" + CONV, CfgParseError, 6,
     "batch >= subdivisions"),
    ("lr-malformed", NET + "learning_rate=1e\n" + CONV, CfgParseError, 5, "expected a number"),
    ("lr-nan", NET + "learning_rate=nan\n" + CONV, CfgParseError, 5, "expected a number"),
    ("lr-negative", NET + "learning_rate=-0.1\n" + CONV, CfgParseError, 5, "learning_rate must not be negative"),
    ("burn-in-negative", NET + "burn_in=-5\n" + CONV, CfgParseError, 5, "burn_in must not be negative"),
    ("max-batches-negative", NET + "max_batches=-1\n" + CONV, CfgParseError, 5, "max_batches must not be negative"),
    ("workspace-limit-negative", NET + "workspace_size_limit_MB=-1\n" + CONV, CfgParseError, 5,
     "workspace_size_limit_MB must be in [0, 2^30]"),
    ("policy-unknown", NET + "policy=cosine\n" + CONV, CfgParseError, 5, "unknown policy 'cosine'"),
    ("steps-scales-mismatch", NET + "policy=steps\nsteps=10,20\nscales=.1\n" + CONV, CfgParseError, 7,
     "steps has 2 entries but scales has 1"),
    ("steps-item", NET + "policy=steps\nsteps=10,x\nscales=.1,.1\n" + CONV, CfgParseError, 6,
     "item 2 'x' is not an integer"),
    ("conv-filters-zero", NET + "[convolutional]\nfilters=0\n", CfgParseError, 5, "must be positive"),
    ("conv-size-negative", NET + "[convolutional]\nsize=-1\n", CfgParseError, 5, "must be positive"),
    ("conv-stride-zero", NET + "[convolutional]\nstride=0\n", CfgParseError, 5, "must be positive"),
    ("conv-padding-negative", NET + "[convolutional]\npadding=-1\n", CfgParseError, 5, "padding >= 0"),
    ("conv-groups", NET + "[convolutional]\nfilters=4\ngroups=3\n", CfgParseError, 7, "groups=3 must divide"),
    ("conv-activation", NET + "[convolutional]\nactivation=swishy\n", CfgParseError, 6,
     "unknown activation 'swishy'"),
    ("conv-ternary-2", NET + "[convolutional]\nternary=2\n", CfgParseError, 6, "ternary must be 0 or 1"),
    ("conv-ternary-scale", NET + "[convolutional]\nternary=1\nternary_scale=row\n", CfgParseError, 7,
     "ternary_scale must be layer or filter"),
    ("conv-filters-text", NET + "[convolutional]\nfilters=4x\n", CfgParseError, 6, "expected an integer"),
    ("conv-too-large-kernel", NET + "[convolutional]\nsize=99\n", DarknetValueError, 5, "is not positive"),
    ("conv-weights-huge", NET + "[convolutional]\nfilters=65536\nsize=1024\n", DarknetValueError, 5,
     "weights would need 206158430208 floats, more than the limit"),
    ("output-huge", "[net]\nwidth=65536\nheight=65536\nchannels=3\n" + CONV, DarknetValueError, 5,
     "the output would need 17179869184 floats, more than the limit"),
    ("width-too-large", "[net]\nwidth=70000\nheight=16\nchannels=3\n" + CONV, CfgParseError, 2,
     "width=70000 is too large (at most 65536)"),
    ("conv-padding-huge", NET + "[convolutional]\npadding=2147483000\n", CfgParseError, 6, "is too large"),
    ("region-classes-huge", NET + REGION + "[region]\nclasses=2147483000\nnum=2\n", CfgParseError, 10,
     "classes=2147483000 is too large"),
    ("upsample-overflow", NET + CONV + "[upsample]\nstride=65536\n", DarknetValueError, 10,
     "output 1048576 x 1048576 is larger than 65536"),
    ("reorg-overflow", NET + CONV + "[reorg]\nstride=65536\n", DarknetValueError, 10,
     "must be divisible by stride*stride = 4294967296"),
    ("maxpool-stride-zero", NET + "[maxpool]\nstride=0\nsize=2\n", CfgParseError, 6, "stride must be positive"),
    ("maxpool-size-negative", NET + "[maxpool]\nsize=-2\nstride=1\n", CfgParseError, 6,
     "size must be positive"),
    ("maxpool-padding", NET + "[maxpool]\nsize=2\nstride=2\npadding=9\n", CfgParseError, 8,
     "padding must be in"),
    ("route-no-layers", NET + CONV + "[route]\n", CfgParseError, 10, "needs layers"),
    ("route-forward-ref", NET + CONV + "[route]\nlayers=4\n", CfgParseError, 11, "not an earlier layer"),
    ("route-self-ref", NET + CONV + "[route]\nlayers=1\n", CfgParseError, 11, "not an earlier layer"),
    ("route-before-first", NET + CONV + "[route]\nlayers=-7\n", CfgParseError, 11, "not an earlier layer"),
    ("route-item-text", NET + CONV + "[route]\nlayers=-1,a\n", CfgParseError, 11, "item 2 'a'"),
    ("route-groups-zero", NET + CONV + "[route]\nlayers=-1\ngroups=0\n", CfgParseError, 12,
     "groups must be positive"),
    ("route-group-id", NET + CONV + "[route]\nlayers=-1\ngroups=2\ngroup_id=2\n", CfgParseError, 13,
     "group_id must be in"),
    ("shortcut-no-from", NET + CONV + "[shortcut]\n", CfgParseError, 10, "needs from"),
    ("shortcut-forward", NET + CONV + "[shortcut]\nfrom=5\n", CfgParseError, 11, "not an earlier layer"),
    ("shortcut-activation", NET + CONV + CONV + "[shortcut]\nfrom=-2\nactivation=bad\n", CfgParseError, 17,
     "unknown activation"),
    ("upsample-stride-zero", NET + CONV + "[upsample]\nstride=0\n", CfgParseError, 11, "stride must not be 0"),
    ("reorg-stride-zero", NET + CONV + "[reorg]\nstride=0\n", CfgParseError, 11, "stride must be positive"),
    ("reorg-extra", NET + CONV + "[reorg]\nstride=2\nextra=3\n", DarknetUnsupportedError, 12,
     "extra is not supported"),
    ("connected-output-zero", NET + "[connected]\noutput=0\n", CfgParseError, 6, "output must be positive"),
    ("softmax-groups", NET + "[softmax]\ngroups=0\n", CfgParseError, 6, "groups must be positive"),
    ("softmax-temperature", NET + "[softmax]\ntemperature=0\n", CfgParseError, 6,
     "temperature must be positive"),
    ("dropout-probability", NET + "[dropout]\nprobability=1\n", CfgParseError, 6, "probability must be in"),
    ("region-filters", NET + CONV + "[region]\nclasses=5\nnum=2\n", CfgParseError, 10,
     "should be num*(classes+coords+1)=20"),
    ("region-anchors-count", NET + REGION + "[region]\nclasses=5\nnum=2\nanchors=1,1,2\n", CfgParseError, 12,
     "anchors has 3 numbers, need 2*num=4"),
    ("region-anchors-text", NET + REGION + "[region]\nclasses=5\nnum=2\nanchors=1,1,2,x\n", CfgParseError,
     12, "item 4 'x' is not a number"),
    ("region-classes-zero", NET + REGION + "[region]\nclasses=0\nnum=2\n", CfgParseError, 9,
     "classes >= 1"),
    ("region-coords", NET + REGION + "[region]\nclasses=5\nnum=2\ncoords=3\n", CfgParseError, 9,
     "coords >= 4"),
    ("region-max-zero", NET + REGION + "[region]\nclasses=5\nnum=2\nmax=0\n", CfgParseError, 12,
     "max must be positive"),
    ("region-tree", NET + REGION + "[region]\nclasses=5\nnum=2\ntree=data/9k.tree\n", DarknetUnsupportedError,
     12, "tree"),
    ("yolo-filters", NET + CONV + "[yolo]\nmask=0,1,2\nanchors=1,1,2,2,3,3\nclasses=2\nnum=3\n",
     CfgParseError, 10, "should be len(mask)*(classes+5)=21"),
    ("yolo-mask-range", NET + YOLO_CONV + "[yolo]\nmask=0,1,5\nanchors=1,1,2,2,3,3\nclasses=2\nnum=3\n",
     CfgParseError, 10, "mask index 5 is outside the num=3 anchors"),
    ("yolo-mask-negative", NET + YOLO_CONV + "[yolo]\nmask=0,-1,2\nanchors=1,1,2,2,3,3\nclasses=2\nnum=3\n",
     CfgParseError, 10, "mask index -1"),
    ("yolo-anchors-count", NET + YOLO_CONV + "[yolo]\nmask=0,1,2\nanchors=1,1,2,2,3\nclasses=2\nnum=3\n",
     CfgParseError, 11, "anchors has 5 numbers, need 2*num=6"),
    ("yolo-mask-empty", NET + YOLO_CONV + "[yolo]\nmask=,\nclasses=2\nnum=3\n", CfgParseError, 10,
     "mask is empty"),
    ("yolo-num-zero", NET + YOLO_CONV + "[yolo]\nclasses=2\nnum=0\n", CfgParseError, 9, "num >= 1"),
    ("yolo-mask-more-than-num", NET + YOLO_CONV + "[yolo]\nmask=0,1,2\nclasses=2\nnum=2\n", CfgParseError, 10,
     "outside the num=2 anchors"),
    ("yolo-ignore-thresh", NET + YOLO_CONV + "[yolo]\nmask=0,1,2\nclasses=2\nnum=3\nignore_thresh=.x\n",
     CfgParseError, 13, "expected a number"),
    ("detection-inputs", NET + "[connected]\noutput=10\n[detection]\nclasses=2\nnum=1\nside=2\n",
     CfgParseError, 7, "side*side*((1+coords)*num+classes)"),
]


@pytest.mark.parametrize("text,exc,line,needle", [c[1:] for c in CFG], ids=[c[0] for c in CFG])
def test_malformed_cfg(tmp_path, text, exc, line, needle):
    p = tmp_path / "bad.cfg"
    p.write_text(text)
    msg = raises_exactly(exc, dn.Network, p)
    where(msg, p, line)
    assert needle in msg, msg


def test_cfg_nul_byte_names_offset(tmp_path):
    p = tmp_path / "nul.cfg"
    p.write_bytes(NET.encode() + b"[convolutional]\nfil\0ters=2\n")
    where(raises_exactly(CfgParseError, dn.Network, p), p, offset=len(NET) + 19)


def test_cfg_missing_and_directory(tmp_path):
    raises_exactly(DarknetIOError, dn.Network, tmp_path / "none.cfg")  # a FileNotFoundError too
    with pytest.raises(FileNotFoundError):
        dn.Network(tmp_path)


def test_unknown_key_is_a_warning_with_line(tmp_path, capfd):
    p = tmp_path / "fork.cfg"
    p.write_text(NET + "cutmix=1\n" + CONV + "iou_loss=ciou\n")
    assert dn.Network(p).layers[0]["filters"] == 4
    err = capfd.readouterr().err
    assert f"{p}:5: [net] cutmix=1 (AlexeyAB's CutMix augmentation) is not implemented" in err
    assert f"{p}:11: unused option 'iou_loss = ciou'" in err  # a [yolo] key in a [convolutional]


# ------------------------------------------------- .data, .names and lists
def small_cfg(tmp_path):
    p = tmp_path / "ok.cfg"
    p.write_text(NET + "batch=2\n" + REGION + "[region]\nclasses=5\nnum=2\nmax=4\n")
    return p


def one_image_set(tmp_path):
    """A list with one good image and its label; returns the list path."""
    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "labels").mkdir(exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "labels" / "a.txt").write_text("1 0.5 0.5 0.25 0.25\n")
    lst = tmp_path / "list.txt"
    lst.write_text(str(tmp_path / "images" / "a.png") + "\n")
    return lst


# (id, .data text ({list}, {names} filled in), exception, line, words)
DATA = [
    ("section", "classes=5\n[train]\n", CfgParseError, 2, "not [sections]"),
    ("classes-text", "classes=five\ntrain={list}\n", CfgParseError, 1, "expected an integer"),
    ("classes-negative", "classes=-2\ntrain={list}\n", CfgParseError, 1, "classes must be >= 0"),
    ("no-equals", "classes=5\ntrain {list}\n", CfgParseError, 2, "expected key=value"),
    ("empty-key", "classes=5\n=x\n", CfgParseError, 2, "empty key"),
    ("no-train", "classes=5\nvalid={list}\n", CfgParseError, None, "no 'train' list"),
    ("empty-file", "", CfgParseError, None, "empty file"),
    ("names-short", "classes=5\ntrain={list}\nnames={names}\n", CfgParseError, 3, "has 2 names but classes = 5"),
]


@pytest.mark.parametrize("text,exc,line,needle", [c[1:] for c in DATA], ids=[c[0] for c in DATA])
def test_malformed_data_file(tmp_path, text, exc, line, needle):
    lst = one_image_set(tmp_path)
    names = tmp_path / "two.names"
    names.write_text("cat\ndog\n")
    p = tmp_path / "bad.data"
    p.write_text(text.format(list=lst, names=names))
    msg = raises_exactly(exc, dn.train, p, small_cfg(tmp_path), progress=False, max_batches=1,
                         backup=tmp_path / "bk")
    where(msg, p, line)
    assert needle in msg, msg


@pytest.mark.parametrize("what", ["names", "train"])
def test_data_file_points_at_missing_files(tmp_path, what):
    p = tmp_path / "x.data"
    missing = tmp_path / f"missing.{what}"
    good = f"train={one_image_set(tmp_path)}\n" if what != "train" else ""
    p.write_text(f"classes=5\n{good}{what}={missing}\n")
    msg = raises_exactly(DarknetIOError, dn.train, p, small_cfg(tmp_path), progress=False, max_batches=1,
                         backup=tmp_path / "bk")
    assert str(missing) in msg and "No such file" in msg


def test_data_file_nul_byte_names_offset(tmp_path):
    p = tmp_path / "nul.data"
    p.write_bytes(b"classes=5\ntr\0ain=x\n")
    where(raises_exactly(CfgParseError, dn.train, p, small_cfg(tmp_path), progress=False), p, offset=12)


def test_names_line_too_long(tmp_path):
    names = tmp_path / "long.names"
    names.write_text("cat\n" + "x" * 5000 + "\n")
    p = tmp_path / "x.data"
    p.write_text(f"classes=2\ntrain={one_image_set(tmp_path)}\nnames={names}\n")
    msg = raises_exactly(CfgParseError, dn.train, p, small_cfg(tmp_path), progress=False)
    where(msg, names, 2)


# (id, list text ({img} = a good image), exception, line, words)
LISTS = [
    ("empty", "", CfgParseError, None, "the image list is empty"),
    ("blank-lines", "\n\n  \n\t\n", CfgParseError, None, "the image list is empty"),
    ("line-too-long", "{img}\n" + "/x" * 3000 + "\n", CfgParseError, 2, "line too long"),
    ("nul-byte", "{img}\nab\0c\n", CfgParseError, 2, "NUL byte"),
]


@pytest.mark.parametrize("text,exc,line,needle", [c[1:] for c in LISTS], ids=[c[0] for c in LISTS])
def test_malformed_list_file(tmp_path, text, exc, line, needle):
    img = open(one_image_set(tmp_path)).read().strip()
    p = tmp_path / "bad.list"
    p.write_bytes(text.format(img=img).encode())
    msg = raises_exactly(exc, _core.Loader, str(p), batch=1, classes=5)
    where(msg, p, line)
    assert needle in msg, msg


def test_list_trailing_spaces_and_crlf_are_ignored(tmp_path):
    img = open(one_image_set(tmp_path)).read().strip()
    p = tmp_path / "ok.list"
    p.write_text(f"{img}  \r\n\n")
    ld = _core.Loader(str(p), batch=2, classes=5, max_boxes=2, augment=False, max_skips=0)
    images, truth = ld.next(16, 16)
    assert ld.size == 1 and ld.skipped == 0
    np.testing.assert_allclose(truth[0, 0], [.5, .5, .25, .25, 1], rtol=1e-6)


def test_missing_images_exceed_max_skips_naming_the_image(tmp_path):
    img = open(one_image_set(tmp_path)).read().strip()
    p = tmp_path / "l.list"
    gone = tmp_path / "images" / "gone.png"
    p.write_text(f"{img}\n{gone}\n" * 3)
    ld = _core.Loader(str(p), batch=16, classes=5, max_boxes=2, max_skips=0)
    msg = raises_exactly(DarknetIOError, ld.next, 16, 16)
    assert "too many bad images or labels" in msg and str(gone) in msg


# ----------------------------------------------------------- label files
LABELS = [
    ("class-too-big", "5 0.5 0.5 0.2 0.2", "class id 5 outside [0, 5)"),
    ("class-negative", "-1 0.5 0.5 0.2 0.2", "class id -1"),
    ("class-float", "1.5 0.5 0.5 0.2 0.2", "expected 'class cx cy w h'"),
    ("class-word", "dog 0.5 0.5 0.2 0.2", "expected 'class cx cy w h'"),
    ("x-above-1", "1 1.5 0.5 0.2 0.2", "not inside [0,1]"),
    ("x-negative", "1 -0.1 0.5 0.2 0.2", "not inside [0,1]"),
    ("y-above-1", "1 0.5 1.01 0.2 0.2", "not inside [0,1]"),
    ("w-zero", "1 0.5 0.5 0 0.2", "positive size"),
    ("h-negative", "1 0.5 0.5 0.2 -0.2", "positive size"),
    ("w-above-1", "1 0.5 0.5 1.2 0.2", "not inside [0,1]"),
    ("nan", "1 nan 0.5 0.2 0.2", "not inside [0,1]"),
    ("inf", "1 0.5 0.5 inf 0.2", "not inside [0,1]"),
    ("pixels", "1 320 240 50 80", "not inside [0,1]"),
    ("four-fields", "1 0.5 0.5 0.2", "expected 'class cx cy w h'"),
    ("six-fields", "1 0.5 0.5 0.2 0.2 0.9", "expected 'class cx cy w h'"),
    ("comma-separated", "1,0.5,0.5,0.2,0.2", "expected 'class cx cy w h'"),
    ("trailing-text", "1 0.5 0.5 0.2 0.2 # car", "expected 'class cx cy w h'"),
    ("one-field", "3", "expected 'class cx cy w h'"),
    ("garbage-bytes", "\x01\x02\x03", "expected 'class cx cy w h'"),
    ("too-long", "1 0.5 0.5 0.2 0.2" + " " * 2000 + "x", "line too long"),
    ("nul-byte", "1 0.5 0.5\0 0.2 0.2", "NUL byte"),
]


@pytest.mark.parametrize("line,needle", [c[1:] for c in LABELS], ids=[c[0] for c in LABELS])
def test_malformed_label_line(tmp_path, line, needle):
    p = tmp_path / "bad.txt"
    p.write_bytes(("0 0.5 0.5 0.1 0.1\n" + line + "\n0 0.2 0.2 0.1 0.1\n").encode())
    msg = raises_exactly(CfgParseError, _core.load_labels, str(p), 5)
    where(msg, p, 2)
    assert needle in msg, msg


def test_bad_label_is_skipped_in_training_and_counted(tmp_path):
    lst = one_image_set(tmp_path)
    img2 = tmp_path / "images" / "b.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(img2)
    (tmp_path / "labels" / "b.txt").write_text("9 0.5 0.5 0.2 0.2\n")
    lst.write_text(open(lst).read() + f"{img2}\n")
    ld = _core.Loader(str(lst), batch=8, classes=5, max_boxes=2, seed=0)
    images, truth = ld.next(16, 16)
    assert ld.skipped > 0
    assert np.all(truth[:, 0, 4] == 1)  # only the good image made it into the batch
    strict = _core.Loader(str(lst), batch=8, classes=5, max_boxes=2, seed=0, max_skips=0)
    msg = raises_exactly(CfgParseError, strict.next, 16, 16)
    assert "too many bad images or labels" in msg and f"{tmp_path / 'labels' / 'b.txt'}:1:" in msg


def test_empty_label_file_is_no_objects(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_text("")
    assert _core.load_labels(str(p), 5).shape == (0, 5)
    p.write_text("\n  \n\r\n")
    assert _core.load_labels(str(p), 5).shape == (0, 5)


# ------------------------------------------------------------------ images
def png_bytes(a):
    import io
    b = io.BytesIO()
    Image.fromarray(a).save(b, format="PNG")
    return b.getvalue()


def jpeg_bytes(a):
    import io
    b = io.BytesIO()
    Image.fromarray(a).save(b, format="JPEG")
    return b.getvalue()


RGB = (np.arange(12 * 10 * 3) % 251).astype(np.uint8).reshape(12, 10, 3)


def png_with_size(w, h):
    """A PNG whose IHDR claims w x h (CRC fixed) but holds no such pixels."""
    raw = bytearray(png_bytes(RGB))
    ihdr = raw[12:29]
    ihdr[4:12] = struct.pack(">II", w, h)
    raw[12:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(raw)


IMAGES = [
    ("empty-file", b"", FormatError),
    ("text", b"hello, this is not an image\n", FormatError),
    ("random-bytes", bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)), FormatError),
    ("png-signature-only", png_bytes(RGB)[:8], FormatError),
    ("png-truncated-header", png_bytes(RGB)[:20], FormatError),
    ("png-truncated-data", png_bytes(RGB)[:60], FormatError),
    ("png-zero-width", png_with_size(0, 12), FormatError),
    ("png-huge", png_with_size(1 << 20, 1 << 20), FormatError),
    ("jpeg-soi-only", b"\xff\xd8", FormatError),
    ("jpeg-truncated", jpeg_bytes(RGB)[:40], FormatError),
    ("jpeg-no-scan", jpeg_bytes(RGB)[:jpeg_bytes(RGB).index(b"\xff\xda")], FormatError),
    ("bmp-header-only", b"BM" + b"\0" * 20, FormatError),
    ("gif-header-only", b"GIF89a\x01\x00\x01\x00", FormatError),
]


@pytest.mark.parametrize("data,exc", [c[1:] for c in IMAGES], ids=[c[0] for c in IMAGES])
def test_malformed_image(tmp_path, data, exc):
    p = tmp_path / "bad.img"
    p.write_bytes(data)
    where(raises_exactly(exc, _core.load_image, str(p)), p)


def test_missing_and_directory_images(tmp_path):
    where(raises_exactly(DarknetIOError, _core.load_image, str(tmp_path / "none.jpg")), tmp_path / "none.jpg")
    where(raises_exactly(FormatError, _core.load_image, str(tmp_path)), tmp_path)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16"])
def test_grayscale_rgba_palette_images_load_as_rgb(tmp_path, mode):
    src = Image.fromarray(RGB).convert(mode) if mode != "I;16" else Image.fromarray(RGB[:, :, 0].astype(np.uint16) * 257)
    p = tmp_path / "m.png"
    src.save(p)
    got = _core.load_image(str(p))
    assert got.shape == (12, 10, 3)
    if mode in ("L", "LA", "I;16"):
        assert np.array_equal(got[:, :, 0], got[:, :, 1]) and np.array_equal(got[:, :, 1], got[:, :, 2])
    if mode == "RGBA":
        assert np.array_equal(got, RGB)


# ----------------------------------------------------------- .weights files
WNET = NET + "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=leaky\n" + \
    "[convolutional]\nfilters=2\nsize=1\nactivation=linear\nternary=1\n"
# floats per param: conv0 biases 4, scales 4, mean 4, var 4, weights 108; conv1 biases 2, weights 8
# (536 bytes after the 20-byte header; layer 1 starts at byte 516)
W_FLOATS = [4, 4, 4, 4, 108, 2, 8]


@pytest.fixture
def wnet(tmp_path):
    cfg = tmp_path / "w.cfg"
    cfg.write_text(WNET)
    net = dn.Network(cfg, seed=3)
    good = tmp_path / "good.weights"
    net.save_weights(good)
    return cfg, good.read_bytes()


def weights_cases():
    hdr = struct.pack("<iiiQ", 0, 2, 0, 64)
    body = b"\0" * 4 * sum(W_FLOATS)
    cases = [(f"header-{n}-bytes", lambda g, n=n: g[:n], "truncated header", None) for n in (0, 4, 11, 12, 19)]
    cases += [
        ("negative-version", lambda g: struct.pack("<iiiQ", -1, 2, 0, 0) + body, "version -1.2.0 is negative", None),
        ("cut-in-biases", lambda g: g[:20 + 8], "layer 0 [convolutional] biases needs 4 floats, only 2 left", 28),
        ("cut-before-weights", lambda g: g[:20 + 64], "layer 0 [convolutional] weights needs 108", 84),
        ("cut-mid-weights", lambda g: g[:20 + 64 + 200], "weights needs 108 floats, only 50 left", 284),
        ("cut-second-layer", lambda g: g[:20 + 496 + 4], "layer 1 [convolutional] biases needs 2 floats, only 1", 520),
        ("cut-last-float", lambda g: g[:-1], "layer 1 [convolutional] weights needs 8 floats, only 7 left", 552),
        ("oversize-1-byte", lambda g: g + b"\0", "oversize: 1 extra bytes", 556),
        ("oversize-layer", lambda g: g + g[20:100], "oversize: 80 extra bytes", 556),
        ("old-header-extra", lambda g: struct.pack("<iiiI", 0, 1, 0, 5) + g[20:] + b"\0" * 4,
         "oversize: 4 extra bytes", 552),
        ("wrong-cfg-smaller", lambda g: hdr + body[:-32], "layer 1 [convolutional] weights needs 8 floats, only 0", 524),
    ]
    return cases


@pytest.mark.parametrize("mutate,needle,offset", [c[1:] for c in weights_cases()],
                         ids=[c[0] for c in weights_cases()])
def test_malformed_weights(tmp_path, wnet, mutate, needle, offset):
    cfg, good = wnet
    net = dn.Network(cfg, seed=9)
    before = [net.params(i)["weights"].copy() for i in range(2)]
    p = tmp_path / "bad.weights"
    p.write_bytes(mutate(good))
    msg = raises_exactly(FormatError, net.load_weights, p)
    where(msg, p, offset=offset)
    assert needle in msg, msg
    for i in range(2):  # a failed load leaves the network as it was
        assert np.array_equal(net.params(i)["weights"], before[i])


def test_weights_missing_and_directory(tmp_path, wnet):
    cfg, _ = wnet
    net = dn.Network(cfg)
    where(raises_exactly(DarknetIOError, net.load_weights, tmp_path / "none.weights"), tmp_path / "none.weights")
    with pytest.raises(dn.DarknetError) as e:
        net._net.load_weights(str(tmp_path), -1)
    assert str(tmp_path) in str(e.value)


# ------------------------------------------------------------ packed files
def crc(b):
    return zlib.crc32(bytes(b)) & 0xffffffff


def refix(f, table=True, header=True, layers=True):
    """Recompute the CRCs of a packed file (bytearray) after a mutation."""
    nl = struct.unpack_from("<I", f, 20)[0]
    if 64 + 64 * nl > len(f):
        layers = table = False
    if layers:
        for i in range(nl):
            r = 64 + 64 * i
            off, n = struct.unpack_from("<QQ", f, r + 48)
            if off + n <= len(f):
                struct.pack_into("<I", f, r + 28, crc(f[off:off + n]))
    if table:
        struct.pack_into("<I", f, 56, crc(f[64:64 + 64 * nl]))
    if header:
        struct.pack_into("<I", f, 60, crc(f[:60]))
    return f


@pytest.fixture
def packed(tmp_path, wnet):
    cfg, good = wnet
    w = tmp_path / "src.weights"
    w.write_bytes(good)
    out = tmp_path / "good.tpk"
    dn.ternary.pack(cfg, w, out)
    return cfg, bytearray(out.read_bytes())


def put(fmt, off, v, fix=True):
    def m(f):
        struct.pack_into(fmt, f, off, v)
        return refix(f) if fix else f
    return m


# layer 0 record at 64, layer 1 record at 128, data from 192; layer 1 data:
# 2 biases (8 bytes), 1 alpha at 192 + 496 + 8 = 696, then one 32-byte trit block at 700
PACKED = [
    ("magic", put("<8s", 0, b"DNTERNXX", False), "bad magic at byte offset 0", None),
    ("version", put("<I", 8, 3), "unsupported version 3 at byte offset 8", None),
    ("header-size", put("<I", 12, 60), "bad header at byte offset 12", None),
    ("trits-per-block", put("<I", 36, 128), "bad header at byte offset 36", None),
    ("header-crc", put("<I", 60, 1, False), "header checksum mismatch", 60),
    ("layers-zero", put("<I", 20, 0), "bad header at byte offset 20: 0 layers", None),
    ("layers-huge", put("<I", 20, 1 << 30), "bad header at byte offset 20", None),
    ("layers-more", put("<I", 20, 3), "the file has 3 layers, the cfg 2", 20),
    ("negative-major", put("<i", 24, -5), "bad header at byte offset 24", None),
    ("record-layer-index", put("<I", 128 + 16, 7), "bad record at byte offset 128", None),
    ("record-offset", put("<Q", 64 + 48, 100), "bad record at byte offset 112", None),
    ("record-bytes-huge", put("<Q", 128 + 56, 1 << 50), "bad record at byte offset 184", None),
    ("record-type", put("<16s", 64, b"maxpool"), "the file has a [maxpool] layer, the cfg a [convolutional]", None),
    ("record-kind", put("<I", 128 + 20, 0), "stored as float, the cfg has it ternary", None),
    ("record-kind-unknown", put("<I", 128 + 20, 9), "unknown kind", None),
    ("record-alphas", put("<I", 128 + 24, 2), "2 alphas", 152),
    ("record-floats-lie", put("<Q", 64 + 32, 999), "999 floats", None),
    ("table-crc", lambda f: refix(put("<I", 56, 0, False)(f), table=False, layers=False),
     "record table checksum mismatch", 56),
    ("size-field", put("<Q", 48, 9999), "bad header at byte offset 48", None),
    ("layer-crc", lambda f: refix(bytearray(f[:300]) + bytes([f[300] ^ 1]) + f[301:], layers=False),
     "checksum mismatch in layer 0 [convolutional] data", None),
    ("truncated-table", lambda f: f[:100], "truncated at byte offset 100", None),
    ("truncated-header", lambda f: f[:40], "truncated at byte offset 40", None),
    ("truncated-data", lambda f: f[:650], "truncated at byte offset 650: layer 0 [convolutional] data spans bytes 192-688", None),
    ("truncated-last-byte", lambda f: f[:-1], "truncated at byte offset 731: layer 1", None),
    ("oversize", lambda f: f + b"\0\0\0", "oversize: 3 extra bytes", 732),
    ("trit-byte", put("<B", 700 + 3, 250), "bad trit byte 250 (> 242)", 703),
    ("padding", put("<B", 700 + 1, 0), "bad padding", 701),
    ("alpha-negative", put("<f", 696, -1.0), "bad alpha -1", 696),
    ("alpha-nan", put("<f", 696, float("nan")), "bad alpha nan", 696),
    ("alpha-inf", put("<f", 696, float("inf")), "bad alpha inf", 696),
]


@pytest.mark.parametrize("mutate,needle,offset", [c[1:] for c in PACKED], ids=[c[0] for c in PACKED])
def test_malformed_packed(tmp_path, packed, mutate, needle, offset):
    cfg, good = packed
    net = dn.Network(cfg, seed=9)
    before = [net.params(i)["weights"].copy() for i in range(2)]
    p = tmp_path / "bad.tpk"
    p.write_bytes(bytes(mutate(bytearray(good))))
    msg = raises_exactly(FormatError, net.load_weights, p)
    where(msg, p, offset=offset)
    assert needle in msg, msg
    for i in range(2):
        assert np.array_equal(net.params(i)["weights"], before[i])


def test_packed_layout_assumed_by_the_table(packed):
    """The offsets the PACKED table pokes at are where the format puts them."""
    _, f = packed
    assert len(f) == 732 and f[:8] == b"DNTERNPK"
    assert struct.unpack_from("<QQ", f, 128 + 48) == (192 + 496, 8 + 4 + 32)
    assert f[700 + 1] != 0 and 0 < struct.unpack_from("<f", f, 696)[0] < 1


# -------------------------------------------------------- fuzz regressions
REGRESS = os.path.join(ROOT, "tests", "fuzz_regressions")


def regression_files(kind):
    d = os.path.join(REGRESS, kind)
    return sorted(os.path.join(d, f) for f in os.listdir(d)) if os.path.isdir(d) else []


def fuzz_net_cfg(tmp_path):
    """The network of fuzz/fuzz_net.h."""
    import re
    text = open(os.path.join(ROOT, "fuzz", "fuzz_net.h")).read()
    body = "".join(re.findall(r'^\s+"(.*)"', text[text.index("fuzz_net_cfg"):], re.M))
    p = tmp_path / "fuzz_net.cfg"
    p.write_text(body.encode().decode("unicode_escape"))
    return p


def load_through_api(kind, path, tmp_path):
    """Feed one regression input to the public API the way its fuzz target does."""
    if kind == "cfg":
        net = dn.Network(path)
        net.forward(np.zeros(net.input_shape, np.float32))
    elif kind in ("weights", "packed"):
        net = dn.Network(fuzz_net_cfg(tmp_path))
        if kind == "packed":  # the packed target prepends the magic
            p = tmp_path / "x.tpk"
            p.write_bytes(b"DNTERNPK" + open(path, "rb").read())
            path = str(p)
        for upto in (-1, -2, 2):
            net.load_weights(path, upto)
    elif kind == "labels":
        _core.load_labels(path, 20)
    elif kind == "image":
        _core.load_image(path)
    return path


REGRESSIONS = [(k, f) for k in ("cfg", "weights", "packed", "labels", "image") for f in regression_files(k)]


@pytest.mark.parametrize("kind,path", REGRESSIONS or [(None, None)],
                         ids=[f"{k}-{os.path.basename(f)}" for k, f in REGRESSIONS] or ["none"])
def test_fuzz_regression(tmp_path, kind, path):
    """Each input once crashed a fuzz target; now it loads or gives a clean
    error naming the file."""
    if kind is None:
        pytest.skip("no fuzz regressions")
    try:
        load_through_api(kind, path, tmp_path)
    except dn.DarknetError as e:
        assert os.path.basename(path) in str(e) or "x.tpk" in str(e), str(e)


def test_count_of_malformed_inputs():
    """The README's robustness section quotes this count."""
    n = len(CFG) + len(DATA) + len(LISTS) + len(LABELS) + len(IMAGES) + len(weights_cases()) + len(PACKED)
    assert n >= 150, n
