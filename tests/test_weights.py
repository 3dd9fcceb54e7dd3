"""Darknet .weights I/O: exact layout, byte-identical round trip, partial
files, clear errors on truncated or oversize files."""
import os
import struct

import numpy as np
import pytest

import darknet_py as dn

NET = {"width": 10, "height": 10, "channels": 3}
LAYERS = [("convolutional", {"filters": 4, "size": 3, "pad": 1, "batch_normalize": 1, "activation": "leaky"}),
          ("convolutional", {"filters": 5, "size": 1, "activation": "linear"}),
          ("convolutional", {"filters": 3, "size": 3, "stride": 2, "batch_normalize": 1, "activation": "relu"})]


def expected_floats(net):
    return sum(l["nparams"] for l in net.layers)


def test_layout_matches_darknet(make_cfg, tmp_path):
    net = dn.Network(make_cfg(NET, *LAYERS), seed=7)
    path = tmp_path / "a.weights"
    net.save_weights(path)
    raw = path.read_bytes()
    major, minor, rev, seen = struct.unpack("<iiiQ", raw[:20])
    assert (major, minor, rev, seen) == (0, 2, 0, 0)
    body = np.frombuffer(raw[20:], dtype="<f4")
    assert body.size == expected_floats(net) == (4 * 4 + 4 * 27) + (5 + 5 * 4) + (3 * 4 + 3 * 5 * 9)
    # layer 0: biases, scales, rolling_mean, rolling_variance, weights
    p = net.params(0)
    np.testing.assert_array_equal(body[:4], p["biases"])
    np.testing.assert_array_equal(body[4:8], p["scales"])
    np.testing.assert_array_equal(body[16:16 + 108], p["weights"])
    # layer 1: biases then weights (no BN)
    np.testing.assert_array_equal(body[124:129], net.params(1)["biases"])


def test_round_trip_is_byte_identical(make_cfg, tmp_path, rng):
    cfg = make_cfg(NET, *LAYERS)
    a = dn.Network(cfg, seed=1)
    for i in range(3):
        for v in a.params(i).values():
            v[:] = rng.standard_normal(v.size)
    a._net.seen = 123456789012
    pa, pb = tmp_path / "a.weights", tmp_path / "b.weights"
    a.save_weights(pa)
    b = dn.Network(cfg, pa, seed=99)
    assert b.seen == 123456789012
    b.save_weights(pb)
    assert pa.read_bytes() == pb.read_bytes()
    x = rng.random((1, 3, 10, 10), dtype=np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_old_header_with_32bit_seen_round_trips(make_cfg, tmp_path, rng):
    cfg = make_cfg(NET, *LAYERS)
    n = expected_floats(dn.Network(cfg))
    raw = struct.pack("<iiiI", 0, 1, 0, 4242) + rng.standard_normal(n).astype("<f4").tobytes()
    src, dst = tmp_path / "old.weights", tmp_path / "copy.weights"
    src.write_bytes(raw)
    net = dn.Network(cfg, src)
    assert net.seen == 4242
    net.save_weights(dst)
    assert dst.read_bytes() == raw


def test_truncated_file_names_the_layer(make_cfg, tmp_path):
    cfg = make_cfg(NET, *LAYERS)
    net = dn.Network(cfg)
    path = tmp_path / "t.weights"
    net.save_weights(path)
    raw = path.read_bytes()
    path.write_bytes(raw[:-40])  # cut inside layer 2's weights
    with pytest.raises(dn.FormatError) as e:
        dn.Network(cfg, path)
    assert "layer 2 [convolutional] weights" in str(e.value) and str(path) in str(e.value)
    path.write_bytes(raw[:10])
    with pytest.raises(dn.FormatError, match="truncated header"):
        dn.Network(cfg, path)


def test_oversize_file_is_an_error(make_cfg, tmp_path):
    cfg = make_cfg(NET, *LAYERS)
    path = tmp_path / "o.weights"
    dn.Network(cfg).save_weights(path)
    path.write_bytes(path.read_bytes() + b"\0" * 8)
    with pytest.raises(dn.FormatError, match="8 extra bytes"):
        dn.Network(cfg, path)


def test_partial_save_and_load(make_cfg, tmp_path, rng):
    cfg = make_cfg(NET, *LAYERS)
    a = dn.Network(cfg, seed=3)
    part = tmp_path / "a.conv.2"
    a.save_weights(part, upto=2)
    n2 = sum(l["nparams"] for l in a.layers[:2])
    assert os.path.getsize(part) == 20 + 4 * n2
    b = dn.Network(cfg, seed=4)
    before = b.params(2)["weights"].copy()
    b.load_weights(part, upto=2)
    for i in range(2):
        for k, v in a.params(i).items():
            np.testing.assert_array_equal(b.params(i)[k], v)
    np.testing.assert_array_equal(b.params(2)["weights"], before)
    # a prefix file loaded with upto=-2 stops at the layer boundary
    c = dn.Network(cfg, seed=5)
    c.load_weights(part, upto=-2)
    np.testing.assert_array_equal(c.params(1)["weights"], a.params(1)["weights"])
    # but loading it as a whole file is an error naming the missing layer
    with pytest.raises(dn.FormatError, match="layer 2"):
        dn.Network(cfg).load_weights(part)


def test_missing_weights_file(make_cfg, tmp_path):
    with pytest.raises(FileNotFoundError):
        dn.Network(make_cfg(NET, *LAYERS), tmp_path / "nope.weights")


def test_save_is_atomic_on_failure(make_cfg, tmp_path):
    net = dn.Network(make_cfg(NET, *LAYERS))
    with pytest.raises(dn.DarknetError):
        net.save_weights(tmp_path / "no_such_dir" / "x.weights")
    assert not any(p.name.startswith("x.weights") for p in tmp_path.rglob("*"))
