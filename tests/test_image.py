"""Images: loading (stb), PNG writing, Darknet's resize and letterbox against
NumPy references written here, drawing detections, and errors naming the
file. Functions the Python module does not expose (save, resize, draw) are
called through ctypes on libdarknet.so (built by make)."""
import ctypes
import ctypes.util
import os

import numpy as np
import pytest

import darknet_py as dn
from darknet_py import _core
from conftest import DARKNET_LIB, Box, Det, Dets

LIB = DARKNET_LIB


class Image(ctypes.Structure):
    _fields_ = [("w", ctypes.c_int), ("h", ctypes.c_int), ("c", ctypes.c_int),
                ("data", ctypes.POINTER(ctypes.c_float))]


@pytest.fixture(scope="module")
def lib():
    if not os.path.exists(LIB):
        pytest.skip("libdarknet.so is not built (run make)")
    lib = ctypes.CDLL(LIB)
    lib.dn_last_error.restype = ctypes.c_char_p
    lib.dn_image_free.argtypes = [ctypes.POINTER(Image)]
    lib.dn_image_save_png.argtypes = [ctypes.POINTER(Image), ctypes.c_char_p]
    lib.dn_image_load.argtypes = [ctypes.POINTER(Image), ctypes.c_char_p, ctypes.c_int]
    lib.dn_image_resize.argtypes = [ctypes.POINTER(Image), ctypes.c_int, ctypes.c_int, ctypes.POINTER(Image)]
    lib.dn_image_letterbox.argtypes = lib.dn_image_resize.argtypes
    lib.dn_image_draw_detections.argtypes = [ctypes.POINTER(Image), ctypes.POINTER(Dets), ctypes.c_float,
                                             ctypes.POINTER(ctypes.c_char_p)]
    return lib


def as_image(a):
    """C x H x W float32 array -> dn_image viewing it (keep a alive)."""
    a = np.ascontiguousarray(a, np.float32)
    return Image(a.shape[2], a.shape[1], a.shape[0], a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))), a


def take(lib, im):
    """Copy a dn_image made by the library into NumPy and free it."""
    out = np.ctypeslib.as_array(im.data, shape=(im.c, im.h, im.w)).copy()
    lib.dn_image_free(ctypes.byref(im))
    return out


def save_png(lib, chw, path):
    im, keep = as_image(chw)
    st = lib.dn_image_save_png(ctypes.byref(im), str(path).encode())
    assert st == 0, lib.dn_last_error()


# ---------------------------------------------------------------- references


def resize_ref(im, w, h):
    """Darknet's resize_image in float32: horizontal pass, then vertical
    (the last row and column take the last source row and column)."""
    im = np.asarray(im, np.float32)
    c, ih, iw = im.shape
    one = np.float32(1)
    w_scale = np.float32(iw - 1) / np.float32(w - 1) if w > 1 else np.float32(0)
    h_scale = np.float32(ih - 1) / np.float32(h - 1) if h > 1 else np.float32(0)
    part = np.empty((c, ih, w), np.float32)
    for x in range(w):
        sx = np.float32(x) * w_scale
        ix = int(sx)
        if x == w - 1 or iw == 1 or ix >= iw - 1:
            part[:, :, x] = im[:, :, iw - 1]
        else:
            dx = sx - np.float32(ix)
            part[:, :, x] = (one - dx) * im[:, :, ix] + dx * im[:, :, ix + 1]
    out = np.empty((c, h, w), np.float32)
    for y in range(h):
        sy = np.float32(y) * h_scale
        iy = int(sy)
        if y == h - 1 or ih == 1 or iy >= ih - 1:
            out[:, y] = part[:, ih - 1]
        else:
            dy = sy - np.float32(iy)
            out[:, y] = (one - dy) * part[:, iy] + dy * part[:, iy + 1]
    return out


def letterbox_ref(im, w, h):
    c, ih, iw = im.shape
    if np.float32(w) / np.float32(iw) < np.float32(h) / np.float32(ih):
        new_w, new_h = w, ih * w // iw
    else:
        new_w, new_h = iw * h // ih, h
    out = np.full((c, h, w), 0.5, np.float32)
    dx, dy = (w - new_w) // 2, (h - new_h) // 2
    out[:, dy:dy + new_h, dx:dx + new_w] = resize_ref(im, new_w, new_h)
    return out


def u8_to_chw(img):
    return img.transpose(2, 0, 1).astype(np.float32) / np.float32(255)


# ---------------------------------------------------------------------- I/O


def test_png_round_trip(lib, tmp_path, rng):
    u8 = rng.integers(0, 256, (3, 7, 11), dtype=np.uint8)
    path = tmp_path / "a.png"
    save_png(lib, u8.astype(np.float32) / 255, path)
    back = _core.load_image(str(path))
    assert back.shape == (7, 11, 3) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, u8.transpose(1, 2, 0))
    # the C loader gives the same floats in CHW
    im = Image()
    assert lib.dn_image_load(ctypes.byref(im), str(path).encode(), 3) == 0
    np.testing.assert_array_equal(take(lib, im), u8.astype(np.float32) / np.float32(255))


def test_png_save_clamps_and_rounds(lib, tmp_path):
    chw = np.array([[[-0.5, 0.0, 0.2, 1 / 255 * 0.49, 1 / 255 * 0.51, 1.0, 7.0]]], np.float32)
    path = tmp_path / "g.png"
    save_png(lib, chw, path)
    back = _core.load_image(str(path))  # gray -> RGB
    assert back.shape == (1, 7, 3)
    np.testing.assert_array_equal(back[..., 0], [[0, 0, 51, 0, 1, 255, 255]])
    assert np.all(back[..., 0] == back[..., 1]) and np.all(back[..., 1] == back[..., 2])


def test_load_rgba_and_gray_as_stored(lib, tmp_path, rng):
    rgba = rng.integers(0, 256, (4, 5, 6), dtype=np.uint8)
    path = tmp_path / "rgba.png"
    save_png(lib, rgba / np.float32(255), path)
    np.testing.assert_array_equal(_core.load_image(str(path)), rgba[:3].transpose(1, 2, 0))
    im = Image()
    assert lib.dn_image_load(ctypes.byref(im), str(path).encode(), 0) == 0  # as stored
    assert (im.c, im.h, im.w) == (4, 5, 6)
    np.testing.assert_array_equal(take(lib, im), rgba / np.float32(255))


def test_generated_jpeg_loads(tmp_path):
    stb = ctypes.util.find_library("stb")
    if not stb:
        pytest.skip("libstb not found")
    stb = ctypes.CDLL(stb)
    h, w = 24, 40
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), np.full((h, w), 128)], -1).astype(np.uint8)
    path = tmp_path / "g.jpg"
    assert stb.stbi_write_jpg(str(path).encode(), w, h, 3, img.ctypes.data_as(ctypes.c_void_p), 95)
    assert path.read_bytes()[:2] == b"\xff\xd8"
    back = _core.load_image(str(path))
    assert back.shape == (h, w, 3)
    assert np.abs(back.astype(int) - img).mean() < 3


def test_missing_image_raises_io_error_naming_file(tmp_path):
    path = str(tmp_path / "nope.jpg")
    with pytest.raises(dn.DarknetIOError) as e:
        _core.load_image(path)
    assert path in str(e.value)
    assert isinstance(e.value, dn.DarknetError) and isinstance(e.value, FileNotFoundError)


@pytest.mark.parametrize("content", [b"this is not an image", b"", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00"])
def test_corrupt_image_raises_naming_file(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(dn.FormatError) as e:
        _core.load_image(str(path))
    assert str(path) in str(e.value) and "stb_image" in str(e.value)


def test_truncated_png_raises(lib, tmp_path, rng):
    path = tmp_path / "t.png"
    save_png(lib, rng.random((3, 16, 16), dtype=np.float32), path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(dn.DarknetError, match=str(path)):
        _core.load_image(str(path))


def test_detect_on_missing_path_raises(make_cfg, tmp_path):
    cfg = make_cfg({"width": 8, "height": 8, "channels": 3},
                   ("convolutional", dict(size=1, stride=1, filters=6, activation="linear")),
                   ("yolo", dict(mask="0", anchors="2,2", num=1, classes=1)))
    net = dn.Network(cfg)
    path = str(tmp_path / "missing.png")
    with pytest.raises(dn.DarknetError, match="missing.png"):
        net.detect(path)


def test_save_png_errors(lib, tmp_path):
    im, keep = as_image(np.zeros((3, 2, 2), np.float32))
    bad = str(tmp_path / "no" / "dir" / "x.png")
    assert lib.dn_image_save_png(ctypes.byref(im), bad.encode()) != 0
    assert bad in lib.dn_last_error().decode()
    im5, keep5 = as_image(np.zeros((5, 2, 2), np.float32))
    assert lib.dn_image_save_png(ctypes.byref(im5), str(tmp_path / "y.png").encode()) != 0


# ----------------------------------------------------------- resize, letterbox


@pytest.mark.parametrize("src,dst", [((9, 7), (4, 3)), ((5, 4), (13, 11)), ((6, 6), (6, 6)),
                                     ((7, 5), (1, 1)), ((1, 4), (3, 6)), ((640, 480), (416, 312))])
def test_resize_matches_darknet_reference(lib, rng, src, dst):
    a = rng.random((3, src[1], src[0]), dtype=np.float32)
    im, keep = as_image(a)
    out = Image()
    assert lib.dn_image_resize(ctypes.byref(im), dst[0], dst[1], ctypes.byref(out)) == 0
    got = take(lib, out)
    assert got.shape == (3, dst[1], dst[0])
    np.testing.assert_allclose(got, resize_ref(a, *dst), rtol=0, atol=1e-6)


def test_resize_by_hand():
    """3 -> 5 columns: samples at 0, .5, 1, 1.5, 2 of the source."""
    a = np.array([[[0.0, 1.0, 0.5]]], np.float32)
    np.testing.assert_allclose(resize_ref(a, 5, 1), [[[0, 0.5, 1, 0.75, 0.5]]])


def test_resize_same_size_is_identity(lib, rng):
    a = rng.random((2, 5, 8), dtype=np.float32)
    im, keep = as_image(a)
    out = Image()
    assert lib.dn_image_resize(ctypes.byref(im), 8, 5, ctypes.byref(out)) == 0
    np.testing.assert_array_equal(take(lib, out), a)


@pytest.mark.parametrize("src,dst", [((640, 480), (416, 416)), ((333, 500), (64, 64)),
                                     ((20, 10), (64, 48)), ((32, 32), (32, 32)), ((50, 61), (32, 96))])
def test_letterbox_matches_darknet_reference(rng, src, dst):
    img = rng.integers(0, 256, (src[1], src[0], 3), dtype=np.uint8)
    got = _core.letterbox(img, dst[0], dst[1])
    assert got.shape == (1, 3, dst[1], dst[0]) and got.dtype == np.float32
    ref = letterbox_ref(u8_to_chw(img), *dst)
    np.testing.assert_allclose(got[0], ref, rtol=0, atol=1e-6)


def test_letterbox_by_hand(rng):
    """640x480 into 416x416: 416x312 content, 52 rows of 0.5 above and below."""
    img = np.full((480, 640, 3), 255, np.uint8)
    got = _core.letterbox(img, 416, 416)[0]
    assert np.all(got[:, :52] == 0.5) and np.all(got[:, 364:] == 0.5)
    np.testing.assert_allclose(got[:, 52:364], 1.0, atol=1e-6)
    img = np.zeros((64, 32, 3), np.uint8)  # portrait: 16 columns of content centred
    got = _core.letterbox(img, 32, 32)[0]
    assert np.all(got[:, :, :8] == 0.5) and np.all(got[:, :, 8:24] == 0) and np.all(got[:, :, 24:] == 0.5)


def test_letterbox_errors(lib):
    im, keep = as_image(np.zeros((3, 2, 2), np.float32))
    out = Image()
    assert lib.dn_image_letterbox(ctypes.byref(im), 0, 5, ctypes.byref(out)) != 0
    assert not out.data
    empty = Image(0, 0, 3, None)
    assert lib.dn_image_resize(ctypes.byref(empty), 4, 4, ctypes.byref(out)) != 0


# ------------------------------------------------------------------- drawing


def draw(lib, chw, boxes, probs, thresh, names=None):
    im, keep = as_image(chw)
    probs = np.ascontiguousarray(probs, np.float32)
    n, classes = probs.shape
    arr = (Det * n)()
    for i in range(n):
        arr[i].bbox = Box(*boxes[i])
        arr[i].objectness = 1
        arr[i].classes = classes
        arr[i].prob = ctypes.cast(probs.ctypes.data + 4 * classes * i, ctypes.POINTER(ctypes.c_float))
    d = Dets(n, classes, arr, None)
    cnames = (ctypes.c_char_p * classes)(*[s.encode() for s in names]) if names else None
    lib.dn_image_draw_detections(ctypes.byref(im), ctypes.byref(d), thresh, cnames)
    return keep


def test_draw_box_and_label(lib):
    a = np.full((3, 100, 120), 0.5, np.float32)
    # box x 30..70, y 45..75 (centre 50, 60, size 40 x 30), class 0 of 3
    out = draw(lib, a, [(50, 60, 40, 30)], [[0.9, 0, 0]], 0.5, ["dog", "cat", "car"])
    magenta = [1, 0, 1]  # Darknet's colour 0 of the ramp (red, green, blue)
    for x, y in [(30, 60), (70, 60), (50, 75), (30, 75), (70, 75)]:
        np.testing.assert_array_equal(out[:, y, x], magenta)
    # inside and outside the box untouched
    assert np.all(out[:, 50:74, 31:70] == 0.5)
    assert np.all(out[:, 77:, :] == 0.5) and np.all(out[:, :, 80:] == 0.5)
    # the label sits above the box from its left edge: colour and black text
    label = out[:, :46, 30:70]
    is_col = np.all(label == np.array(magenta, np.float32)[:, None, None], axis=0)
    is_black = np.all(label == 0, axis=0)
    assert is_col.sum() > 20 and is_black.sum() > 5
    assert np.all(out[:, :46, :30] == 0.5)


def test_draw_colour_per_class_and_thresh(lib):
    a = np.full((3, 60, 60), 0.5, np.float32)
    # class 2 of 3: offset 2*123457 % 3 = 2, ratio 10/3 between (0,1,0) and (1,1,0)
    out = draw(lib, a, [(30, 40, 20, 20), (10, 10, 4, 4)], [[0, 0, 0.7], [0.3, 0, 0]], 0.5)
    np.testing.assert_allclose(out[:, 40, 20], [0, 1, 1 / 3], atol=1e-6)
    np.testing.assert_allclose(out[:, 50, 30], [0, 1, 1 / 3], atol=1e-6)
    # the second detection is below thresh: nothing drawn around (10, 10)
    assert np.all(out[:, 8:13, 8:13] == 0.5)


def test_draw_clips_to_image(lib):
    a = np.full((3, 40, 40), 0.5, np.float32)
    out = draw(lib, a, [(0, 0, 30, 30), (200, 200, 10, 10)], [[1.0], [1.0]], 0.5)
    np.testing.assert_array_equal(out[:, 15, 0], [1, 0, 1])   # left edge clipped at 0
    np.testing.assert_array_equal(out[:, 0, 15], [1, 0, 1])   # top edge clipped at 0 (or label)
    assert np.all(out[:, 20:, 20:] == 0.5)                    # the far box drew nothing
