"""Packed ternary weights (csrc/core/packed.c): pack -> unpack gives the
ternarised .weights byte for byte, the file of a fully ternary
yolov2-tiny-voc is at most 1/14 of its .weights, the header and records
are as documented, damaged files are FormatErrors naming the file, the byte
offset and the layer, and Network / ./darknet load packed files directly."""
import os
import pathlib
import struct
import zlib

import numpy as np
import pytest

from conftest import ROOT, run_darknet

dp = pytest.importorskip("darknet_py")
from darknet_py import FormatError  # noqa: E402
from darknet_py.cfgfile import write_cfg  # noqa: E402
from darknet_py.stages import conv_indices, stage_sections  # noqa: E402

HEADER, RECORD = 64, 64


def ternary_cfg(tmp_path, src=os.path.join(ROOT, "cfg", "yolov2-tiny-voc.cfg"), size=96, name="t.cfg"):
    secs = stage_sections(src, range(len(conv_indices(stage_sections(src, [])))))
    for k, v in (("width", size), ("height", size), ("batch", 1), ("subdivisions", 1)):
        secs[0].set(k, v)
    path = str(tmp_path / name)
    write_cfg(secs, path)
    return path


MIXED = """
[net]
width=24
height=24
channels=3

[convolutional]
filters=7
size=3
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=9
size=3
stride=1
pad=1
ternary=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=11
size=3
stride=2
pad=1
ternary=1
ternary_scale=filter
activation=leaky

[convolutional]
filters=5
size=1
stride=1
pad=0
ternary=1
activation=linear

[connected]
output=3
activation=linear
"""


@pytest.fixture
def mixed(tmp_path, rng):
    cfg = tmp_path / "mixed.cfg"
    cfg.write_text(MIXED)
    net = dp.Network(str(cfg), seed=5)
    for i, l in enumerate(net.layers):
        for k, v in net.params(i).items():
            v[:] = rng.standard_normal(v.size) * (0.2 if k != "rolling_variance" else 0.1) + \
                (1.0 if k == "rolling_variance" else 0.0)
    net.params(1)["weights"][:5] = 0  # a few exact zeros
    net.seen = 123456789
    w = tmp_path / "mixed.weights"
    net.save_weights(w)
    return str(cfg), str(w), net


def parse(path):
    raw = open(path, "rb").read()
    h = dict(zip(("magic", "version", "header_bytes", "record_bytes", "layers", "major", "minor", "revision",
                  "trits_per_block", "seen", "file_bytes", "table_crc", "header_crc"),
                 struct.unpack("<8sIIII3iIQQII", raw[:HEADER])))
    recs = []
    for i in range(h["layers"]):
        r = raw[HEADER + i * RECORD:HEADER + (i + 1) * RECORD]
        t, layer, kind, alphas, crc, floats, trits, off, nbytes = struct.unpack("<16sIIIIQQQQ", r)
        recs.append(dict(type=t.rstrip(b"\0").decode(), layer=layer, kind=kind, alphas=alphas, crc=crc,
                         floats=floats, trits=trits, offset=off, bytes=nbytes))
    return raw, h, recs


def fix_crcs(raw):
    """Recompute every CRC of a (deliberately edited) packed file."""
    raw = bytearray(raw)
    n = struct.unpack_from("<I", raw, 20)[0]
    for i in range(n):
        at = HEADER + i * RECORD
        off, nbytes = struct.unpack_from("<QQ", raw, at + 48)
        struct.pack_into("<I", raw, at + 28, zlib.crc32(bytes(raw[off:off + nbytes])))
    struct.pack_into("<I", raw, 56, zlib.crc32(bytes(raw[HEADER:HEADER + n * RECORD])))
    struct.pack_into("<I", raw, 60, zlib.crc32(bytes(raw[:60])))
    return bytes(raw)


def test_header_and_records_as_documented(tmp_path, mixed):
    cfg, w, net = mixed
    out = tmp_path / "m.tpk"
    dp.ternary.pack(cfg, w, out)
    raw, h, recs = parse(out)
    assert h["magic"] == b"DNTERNPK" and h["version"] == 1
    assert (h["header_bytes"], h["record_bytes"], h["trits_per_block"]) == (64, 64, 160)
    assert h["layers"] == len(net.layers) == len(recs)
    assert (h["major"], h["minor"], h["revision"], h["seen"]) == (0, 2, 0, 123456789)
    assert h["file_bytes"] == len(raw)
    assert h["header_crc"] == zlib.crc32(raw[:60])
    assert h["table_crc"] == zlib.crc32(raw[HEADER:HEADER + RECORD * len(recs)])
    off = HEADER + RECORD * len(recs)
    for i, (r, l) in enumerate(zip(recs, net.layers)):
        p = net.params(i)
        assert r["layer"] == i and r["type"] == l["type"] and r["offset"] == off
        assert r["crc"] == zlib.crc32(raw[off:off + r["bytes"]])
        if l["ternary"]:
            n = p["weights"].size
            groups = l["filters"] if i == 3 else 1  # layer 3: ternary_scale=filter
            assert (r["kind"], r["trits"], r["alphas"]) == (1, n, groups)
            assert r["floats"] == sum(v.size for k, v in p.items() if k != "weights")
            assert r["bytes"] == 4 * r["floats"] + 4 * groups + 32 * -(-n // 160)
        else:
            assert (r["kind"], r["trits"], r["alphas"]) == (0, 0, 0)
            assert r["floats"] == sum(v.size for v in p.values()) and r["bytes"] == 4 * r["floats"]
        off += r["bytes"]
    assert off == len(raw)
    # the trits of layer 1: biases, scales, mean, variance (4 x 9 floats), alpha, then blocks
    r = recs[1]
    codes = []
    for byte in raw[r["offset"] + 4 * 36 + 4:r["offset"] + r["bytes"]]:
        for _ in range(5):
            codes.append(byte % 3 - 1)
            byte //= 3
    t, alpha = dp._core.ternarize(net.params(1)["weights"])
    n = t.size
    np.testing.assert_array_equal(np.array(codes[:n]), np.sign(t))
    assert all(c == 0 for c in codes[n:])
    assert struct.unpack_from("<f", raw, r["offset"] + 4 * 36)[0] == alpha[0]


def test_pack_unpack_is_byte_identical(tmp_path, mixed):
    cfg, w, net = mixed
    packed, back = tmp_path / "m.tpk", tmp_path / "back.weights"
    dp.ternary.pack(cfg, w, packed)
    dp.ternary.unpack(cfg, packed, back)
    assert open(back, "rb").read() == open(w, "rb").read()
    # packing the packed file again gives the same file
    again = tmp_path / "again.tpk"
    dp.ternary.pack(cfg, packed, again)
    assert open(again, "rb").read() == open(packed, "rb").read()


@pytest.fixture
def big_tmp(tmp_path):
    """A folder in memory when the machine has one: the 63 MB .weights files
    of this test are written with fsync (atomic writes), slow on a busy disk."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        import tempfile
        with tempfile.TemporaryDirectory(dir="/dev/shm") as d:
            yield pathlib.Path(d)
    else:
        yield tmp_path


def test_fully_ternary_yolov2_tiny_size_and_round_trip(big_tmp, record_property):
    tmp_path = big_tmp
    cfg = ternary_cfg(tmp_path)
    net = dp.Network(cfg, seed=1)
    w, packed, back = tmp_path / "t.weights", tmp_path / "t.tpk", tmp_path / "back.weights"
    net.save_weights(w)
    dp.ternary.pack(cfg, w, packed)
    dp.ternary.unpack(cfg, packed, back)
    assert open(back, "rb").read() == open(w, "rb").read()
    ratio = os.path.getsize(w) / os.path.getsize(packed)
    record_property("size_ratio", ratio)
    print(f"\nyolov2-tiny-voc fully ternary: .weights {os.path.getsize(w)} bytes, packed "
          f"{os.path.getsize(packed)} bytes, 1/{ratio:.2f}")
    assert os.path.getsize(packed) * 14 <= os.path.getsize(w)
    # the packed file loads the .weights' params exactly, so the same outputs
    x = np.random.default_rng(0).random((1, 3, 96, 96), dtype=np.float32)
    a, b = dp.Network(cfg, w, ternary_kernel="int8"), dp.Network(cfg, packed, ternary_kernel="int8")
    for i in range(len(a.layers)):
        for k, v in a.params(i).items():
            np.testing.assert_array_equal(b.params(i)[k], v)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_info(tmp_path, mixed):
    cfg, w, net = mixed
    packed = tmp_path / "m.tpk"
    dp.ternary.pack(cfg, w, packed)
    rows_w, rows_p = dp.ternary.info(cfg, w), dp.ternary.info(cfg, packed)
    assert [r["format"] for r in rows_w + rows_p] == ["weights"] * len(rows_w) + ["packed"] * len(rows_p)
    assert sum(r["bytes"] for r in rows_w) + 20 == os.path.getsize(w)
    assert sum(r["bytes"] for r in rows_p) + HEADER + RECORD * len(rows_p) == os.path.getsize(packed)
    for i, (a, b) in enumerate(zip(rows_w, rows_p)):
        for k in ("type", "ternary", "params", "weights", "zeros", "alphas", "alpha_min", "alpha_mean", "alpha_max"):
            assert a[k] == b[k], (i, k)
        if a["ternary"]:
            t, alphas = dp._core.ternarize(net.params(i)["weights"], groups=a["alphas"])
            assert a["zeros"] == int(np.sum(t == 0)) and a["zero_share"] == pytest.approx(np.mean(t == 0))
            assert a["alpha_min"] == alphas.min() and a["alpha_max"] == alphas.max()
            assert b["bytes"] < a["bytes"] / 4
    assert rows_w[1]["zeros"] >= 5 and rows_w[3]["alphas"] == 11 and not rows_w[0]["ternary"]


def test_cli_pack_unpack_info(tmp_path, mixed):
    cfg, w, net = mixed
    packed, back = tmp_path / "c.tpk", tmp_path / "c.weights"
    r = run_darknet("ternary", "pack", cfg, w, packed)
    assert "Packed" in r.stdout
    run_darknet("ternary", "unpack", cfg, packed, back)
    assert open(back, "rb").read() == open(w, "rb").read()
    r = run_darknet("ternary", "info", cfg, packed)
    assert "packed ternary weights" in r.stdout
    lines = [l for l in r.stdout.splitlines() if l.strip()[:1].isdigit()]
    assert len(lines) == len(net.layers) - 1  # the maxpool has no params
    assert "ternary" in lines[1] and "float" in lines[0] and "%" in lines[1]
    r = run_darknet("ternary", "info", cfg, w)
    assert "Darknet .weights" in r.stdout
    r = run_darknet("ternary", "unpack", cfg, tmp_path / "missing.tpk", back, check=False)
    assert r.returncode == 1 and "missing.tpk" in r.stderr


def test_load_packed_into_network_and_upto(tmp_path, mixed):
    cfg, w, net = mixed
    packed = tmp_path / "m.tpk"
    dp.ternary.pack(cfg, w, packed)
    assert dp.ternary.is_packed(packed) and not dp.ternary.is_packed(w)
    x = np.random.default_rng(1).random((1, 3, 24, 24), dtype=np.float32)
    a = dp.Network(cfg, w)
    b = dp.Network(cfg, packed)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert b.seen == 123456789
    c = dp.Network(cfg, seed=99)
    before = {k: v.copy() for k, v in c.params(3).items()}
    c.load_weights(packed, upto=2)
    for i in range(2):
        for k, v in c.params(i).items():
            np.testing.assert_array_equal(v, a.params(i)[k])
    for k, v in c.params(3).items():
        np.testing.assert_array_equal(v, before[k])


def expect_format_error(cfg, path, *needles):
    with pytest.raises(FormatError) as e:
        dp.Network(cfg, path)
    msg = str(e.value)
    assert str(path) in msg, msg
    for n in needles:
        assert n in msg, msg
    with pytest.raises(FormatError):
        dp.ternary.unpack(cfg, path, str(path) + ".weights")
    return msg


def test_damaged_files(tmp_path, mixed):
    cfg, w, net = mixed
    good = tmp_path / "m.tpk"
    dp.ternary.pack(cfg, w, good)
    raw, h, recs = parse(good)
    bad = tmp_path / "bad.tpk"

    def write(data):
        bad.write_bytes(data)
        return bad

    # corrupted magic (one byte), wrong version
    expect_format_error(cfg, write(b"X" + raw[1:]), "bad magic", "byte offset 0")
    expect_format_error(cfg, write(raw[:8] + struct.pack("<I", 3) + raw[12:]), "unsupported version 3",
                        "byte offset 8")
    # truncated: inside the header, the record table, a layer's data
    expect_format_error(cfg, write(raw[:40]), "truncated", "byte offset 40")
    expect_format_error(cfg, write(raw[:HEADER + RECORD * 2 + 10]), "truncated", "record table", "layer 2")
    cut = recs[3]["offset"] + 17
    expect_format_error(cfg, write(raw[:cut]), "truncated", f"byte offset {cut}", "layer 3 [convolutional]")
    # oversize
    expect_format_error(cfg, write(raw + b"\0" * 7), "oversize", "7 extra bytes", f"byte offset {len(raw)}")
    # damaged data byte: the layer's checksum
    at = recs[1]["offset"] + recs[1]["bytes"] - 3
    expect_format_error(cfg, write(raw[:at] + bytes([raw[at] ^ 0x5A]) + raw[at + 1:]), "checksum", "layer 1")
    # damaged header / table
    expect_format_error(cfg, write(raw[:40] + bytes([raw[40] ^ 1]) + raw[41:]), "header checksum")
    at = HEADER + RECORD * 4 + 29
    expect_format_error(cfg, write(raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1:]), "record table checksum")
    # a trit byte above 242 and a bad alpha, with every CRC made right
    at = recs[1]["offset"] + 4 * 36 + 4 + 2
    msg = expect_format_error(cfg, write(fix_crcs(raw[:at] + bytes([250]) + raw[at + 1:])), "trit byte 250",
                              f"byte offset {at}", "layer 1")
    at = recs[1]["offset"] + 4 * 36
    expect_format_error(cfg, write(fix_crcs(raw[:at] + struct.pack("<f", -1.0) + raw[at + 4:])), "alpha",
                        f"byte offset {at}", "layer 1")
    # padding trits past the last weight must be code 0
    last = recs[1]["offset"] + recs[1]["bytes"] - 1
    expect_format_error(cfg, write(fix_crcs(raw[:last] + bytes([0]) + raw[last + 1:])), "padding", "layer 1")
    assert "trit" in msg
    # a record that does not fit the cfg (counts), a file for another cfg
    at = HEADER + RECORD * 3 + 40
    expect_format_error(cfg, write(fix_crcs(raw[:at] + struct.pack("<Q", 5) + raw[at + 8:])),
                        "layer 3", "does the cfg match")
    other = tmp_path / "other.cfg"
    other.write_text(MIXED.replace("filters=11", "filters=12"))
    expect_format_error(str(other), good, "layer 3", "does the cfg match")


def test_failed_load_leaves_network_unchanged(tmp_path, mixed):
    cfg, w, net = mixed
    good = tmp_path / "m.tpk"
    dp.ternary.pack(cfg, w, good)
    raw = open(good, "rb").read()
    bad = tmp_path / "bad.tpk"
    bad.write_bytes(raw[:-10])
    n = dp.Network(cfg, seed=3)
    before = [{k: v.copy() for k, v in n.params(i).items()} for i in range(len(n.layers))]
    with pytest.raises(FormatError):
        n.load_weights(bad)
    for i, p in enumerate(before):
        for k, v in p.items():
            np.testing.assert_array_equal(n.params(i)[k], v)


def test_detector_test_reads_packed(tmp_path):
    from PIL import Image
    cfg = ternary_cfg(tmp_path, os.path.join(ROOT, "cfg", "yolov2-tiny-voc-small.cfg"), size=96)
    net = dp.Network(cfg, seed=3)
    last = len(net.layers) - 2  # the final 1x1 conv: objectness of anchor 0 high, class "dog"
    p = net.params(last)
    p["weights"][:] = 0
    p["biases"][:] = -5
    p["biases"][4] = 5
    p["biases"][5 + 11] = 8
    w, packed = tmp_path / "t.weights", tmp_path / "t.tpk"
    net.save_weights(w)
    dp.ternary.pack(cfg, w, packed)
    img = tmp_path / "img.jpg"
    Image.fromarray((np.random.default_rng(0).random((80, 100, 3)) * 255).astype(np.uint8)).save(img)
    data = os.path.join(ROOT, "cfg", "voc.data")
    outs = []
    for weights, kernel in ((w, "off"), (packed, "off"), (packed, "int8"), (packed, "float")):
        r = run_darknet("detector", "test", data, cfg, weights, img, "-thresh", "0.5", "-out", tmp_path / "p",
                        "-ternary_kernel", kernel)
        outs.append([l for l in r.stdout.splitlines()[1:] if ":" in l])
    assert outs[0] and all(l.startswith("dog: ") for l in outs[0])
    assert outs[1] == outs[0] and outs[2] == outs[0] and outs[3] == outs[0]
    r = run_darknet("detector", "test", data, cfg, packed, img, "-ternary_kernel", "int4", check=False)
    assert r.returncode == 1 and "int4" in r.stderr


def test_detector_map_reads_packed_with_ternary_kernel(tmp_path):
    import re
    import subprocess
    import sys
    from darknet_py.cfgfile import read_cfg
    out = tmp_path / "synth"
    subprocess.run([sys.executable, "-m", "darknet_py", "synth-voc", str(out), "--images", "10", "--classes", "3",
                    "--size", "96", "--no-progress"], cwd=ROOT, check=True, capture_output=True)
    cfg = ternary_cfg(tmp_path, os.path.join(ROOT, "cfg", "yolov2-tiny-voc-small.cfg"), size=96)
    secs = read_cfg(cfg)
    secs[-1].set("classes", 3)
    secs[-2].set("filters", int(secs[-1].get("num")) * 8)
    write_cfg(secs, cfg)
    w, packed = tmp_path / "s.weights", tmp_path / "s.tpk"
    dp.Network(cfg, seed=2).save_weights(w)
    dp.ternary.pack(cfg, w, packed)
    data = str(out / "synth.data")
    maps = {}
    for kernel in ("off", "int8"):
        r = run_darknet("detector", "map", data, cfg, packed, "-ternary_kernel", kernel, "-quiet")
        maps[kernel] = float(re.search(r"\(mAP@[\d.]+\) = ([\d.]+)", r.stdout).group(1))
    assert abs(maps["int8"] - maps["off"]) < 0.05
    r = run_darknet("detector", "map", data, cfg, packed, "-ternary_kernel", "fast", check=False)
    assert r.returncode == 1 and "fast" in r.stderr


# ---------------------------------------------------------------- version 2: folded

RECORD2 = 32


def parse_folded(path):
    raw = open(path, "rb").read()
    version, rb, n = struct.unpack_from("<III", raw, 8)[0], struct.unpack_from("<I", raw, 16)[0], \
        struct.unpack_from("<I", raw, 20)[0]
    recs = [dict(zip(("layer", "kind", "alphas", "crc", "offset", "bytes"),
                     struct.unpack_from("<IIIIQQ", raw, HEADER + i * RECORD2))) for i in range(n)]
    return raw, version, rb, recs


def test_folded_format_as_documented(tmp_path, mixed):
    """Records only for layers with params; a ternary conv with batch norm
    holds float16 scale = alpha*gamma/sqrt(var+1e-6) and shift = beta -
    mean*gamma/sqrt(var+1e-6) per filter, then its codes; the others as in
    version 1. Loaded, it is the same network up to float16 rounding, and
    packing it again gives the same file."""
    cfg, w, net = mixed
    out = tmp_path / "f.tpk"
    dp.ternary.pack(cfg, w, out, fold=True)
    raw, version, rb, recs = parse_folded(out)
    assert (version, rb) == (2, RECORD2)
    assert [r["layer"] for r in recs] == [0, 1, 3, 4, 5]  # the maxpool has no params
    assert [r["kind"] for r in recs] == [0, 2, 2, 1, 0]  # layer 4: ternary without batch norm
    assert struct.unpack_from("<Q", raw, 48)[0] == len(raw)
    assert struct.unpack_from("<I", raw, 56)[0] == zlib.crc32(raw[HEADER:HEADER + RECORD2 * len(recs)])
    off = HEADER + RECORD2 * len(recs)
    for r in recs:
        assert r["offset"] == off and r["crc"] == zlib.crc32(raw[off:off + r["bytes"]])
        off += r["bytes"]
    assert off == len(raw)
    for r, groups in ((recs[1], 1), (recs[2], 11)):
        i, p = r["layer"], net.params(r["layer"])
        f = p["biases"].size
        t, alpha = dp._core.ternarize(p["weights"], groups=groups)
        alpha = np.broadcast_to(alpha, f) if groups == 1 else alpha
        inv = p["scales"] / np.sqrt(p["rolling_variance"] + np.float32(1e-6))
        halves = np.frombuffer(raw, np.float16, 2 * f, r["offset"])
        np.testing.assert_array_equal(halves[:f], (alpha * inv).astype(np.float16))
        np.testing.assert_array_equal(halves[f:], (p["biases"] - p["rolling_mean"] * inv).astype(np.float16))
        assert r["alphas"] == f and r["bytes"] == 4 * f + 32 * -(-t.size // 160)
    # loaded: codes as weights, the folded scale and shift, mean 0, variance 1 - 1e-6
    b = dp.Network(cfg, out)
    t, _ = dp._core.ternarize(net.params(1)["weights"])
    np.testing.assert_array_equal(b.params(1)["weights"], np.sign(t))
    assert np.all(b.params(1)["rolling_mean"] == 0)
    assert np.all(b.params(1)["rolling_variance"] + np.float32(1e-6) == 1)
    x = np.random.default_rng(2).random((1, 3, 24, 24), dtype=np.float32)
    want = dp.Network(cfg, w).forward(x)
    assert np.max(np.abs(b.forward(x) - want)) <= 3e-3 * np.max(np.abs(want))
    again = tmp_path / "again.tpk"
    dp.ternary.pack(cfg, out, again, fold=True)
    assert again.read_bytes() == raw
    # the command line writes the same file
    cli = tmp_path / "cli.tpk"
    run_darknet("ternary", "pack", cfg, w, cli, "-fold")
    assert cli.read_bytes() == raw
    # ternary info's byte counts add up to the file
    rows = dp.ternary.info(cfg, out)
    assert sum(r["bytes"] for r in rows) + HEADER + RECORD2 * len(recs) == len(raw)


def test_folded_damaged_and_mismatched(tmp_path, mixed):
    cfg, w, net = mixed
    good = tmp_path / "f.tpk"
    dp.ternary.pack(cfg, w, good, fold=True)
    raw, _, _, recs = parse_folded(good)
    bad = tmp_path / "bad.tpk"
    bad.write_bytes(raw[:recs[2]["offset"] + 5])
    expect_format_error(cfg, bad, "truncated", "layer 3 [convolutional]")
    other = tmp_path / "other.cfg"
    other.write_text(MIXED.replace("filters=11", "filters=12"))
    expect_format_error(str(other), good, "layer 3", "does the cfg match")
    # a record that skips a layer with params (kind changed: the sizes no longer fit)
    at = HEADER + RECORD2 * 2 + 4
    raw2 = bytearray(raw)
    struct.pack_into("<I", raw2, at, 1)
    struct.pack_into("<I", raw2, 56, zlib.crc32(bytes(raw2[HEADER:HEADER + RECORD2 * len(recs)])))
    struct.pack_into("<I", raw2, 60, zlib.crc32(bytes(raw2[:60])))
    bad.write_bytes(bytes(raw2))
    expect_format_error(cfg, bad, "layer 3", "does the cfg match")


def test_folded_yolov2_tiny_size(big_tmp):
    """Fully ternary yolov2-tiny-voc: the folded file is smaller than version
    1 by the batch-norm floats, and scores the same int8 outputs up to
    float16 rounding."""
    cfg = ternary_cfg(big_tmp)
    net = dp.Network(cfg, seed=1)
    w, p1, p2 = big_tmp / "t.weights", big_tmp / "t.tpk", big_tmp / "f.tpk"
    net.save_weights(w)
    dp.ternary.pack(cfg, w, p1)
    dp.ternary.pack(cfg, w, p2, fold=True)
    assert os.path.getsize(p2) < os.path.getsize(p1)
    x = np.random.default_rng(0).random((1, 3, 96, 96), dtype=np.float32)
    a, b = dp.Network(cfg, w), dp.Network(cfg, p2)
    want = a.forward(x)
    assert np.max(np.abs(b.forward(x) - want)) <= 1e-2 * np.max(np.abs(want))
