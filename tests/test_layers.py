"""Forward pass of each layer type against a NumPy reference written here,
following pjreddie Darknet's definitions (shapes, index orders, defaults),
plus cfg error messages (file:line) for bad options."""
import re

import numpy as np
import pytest

import darknet_py
from conftest import rel_err

TOL = 1e-4


# ---------------------------------------------------------------- helpers

def build(make_cfg, shape, *sections, batch=2, seed=0):
    """Network over a c x h x w input with the given (section, opts) layers."""
    c, h, w = shape
    path = make_cfg({"width": w, "height": h, "channels": c}, *sections)
    return darknet_py.Network(path, batch=batch, seed=seed)


def rand_input(rng, batch, shape):
    return rng.standard_normal((batch,) + tuple(shape)).astype(np.float32)


def line_of(path, key, nth=1):
    """1-based line number of the nth line starting with 'key=' in path."""
    seen = 0
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if line.replace(" ", "").startswith(key + "="):
                seen += 1
                if seen == nth:
                    return i
    raise AssertionError(f"{key} not in {path}")


def header_line(path, section):
    """1-based line number of the last [section] header in path."""
    with open(path) as f:
        lines = [i for i, line in enumerate(f, 1) if line.strip() == f"[{section}]"]
    assert lines, f"[{section}] not in {path}"
    return lines[-1]


def expect_error(path, line, *words):
    """Loading path raises DarknetError whose message names path:line and words."""
    with pytest.raises(darknet_py.DarknetError) as e:
        darknet_py.Network(path)
    msg = str(e.value)
    assert f"{path}:{line}" in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def act_ref(x, name):
    x = x.astype(np.float64)
    sig = 1 / (1 + np.exp(-x))
    return {
        "linear": lambda: x,
        "leaky": lambda: np.where(x > 0, x, 0.1 * x),
        "logistic": lambda: sig,
        "relu": lambda: np.maximum(x, 0),
        "relie": lambda: np.where(x > 0, x, 0.01 * x),
        "ramp": lambda: x * (x > 0) + 0.1 * x,
        "tanh": lambda: np.tanh(x),
        "swish": lambda: x * sig,
        "mish": lambda: x * np.tanh(np.log1p(np.exp(x))),
    }[name]()


ACTS = ["linear", "leaky", "logistic", "relu", "relie", "ramp", "tanh", "swish", "mish"]


def conv_ref(x, wts, bias, size, stride, pad, groups, bn=None, act="linear"):
    """x: N x C x H x W; wts: F x C/groups x size x size. Darknet conv."""
    n, c, h, w = x.shape
    f = wts.shape[0]
    oh = (h + 2 * pad - size) // stride + 1
    ow = (w + 2 * pad - size) // stride + 1
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    xp[:, :, pad:pad + h, pad:pad + w] = x
    out = np.zeros((n, f, oh, ow))
    cg, fg = c // groups, f // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = wts[g * fg:(g + 1) * fg].astype(np.float64)
        for dy in range(size):
            for dx in range(size):
                patch = xs[:, :, dy:dy + stride * (oh - 1) + 1:stride, dx:dx + stride * (ow - 1) + 1:stride]
                out[:, g * fg:(g + 1) * fg] += np.einsum("nchw,fc->nfhw", patch, ws[:, :, dy, dx])
    if bn is not None:
        scales, mean, var = bn
        out = (out - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-6) * scales[None, :, None, None]
    out += bias[None, :, None, None]
    return act_ref(out, act)


# ---------------------------------------------------------------- conv

def randomize_conv(net, i, rng, bn):
    p = net.params(i)
    p["biases"][:] = rng.standard_normal(p["biases"].size)
    p["weights"][:] = rng.standard_normal(p["weights"].size) * 0.3
    if bn:
        p["scales"][:] = rng.uniform(0.5, 1.5, p["scales"].size)
        p["rolling_mean"][:] = rng.standard_normal(p["rolling_mean"].size)
        p["rolling_variance"][:] = rng.uniform(0.2, 2.0, p["rolling_variance"].size)
    return {k: v.copy() for k, v in p.items()}


CONV_CASES = [
    # shape, filters, size, stride, pad, groups, bn
    ((3, 7, 5), 4, 3, 1, 1, 1, 0),
    ((3, 7, 5), 4, 3, 1, 1, 1, 1),
    ((4, 9, 6), 6, 3, 2, 1, 2, 1),
    ((2, 5, 5), 3, 1, 1, 0, 1, 0),
    ((4, 6, 7), 4, 1, 2, 0, 2, 0),
    ((3, 11, 9), 5, 5, 1, 2, 1, 1),
    ((3, 11, 9), 2, 5, 2, 0, 1, 0),
    ((2, 6, 8), 3, 3, 2, 0, 1, 1),
]


@pytest.mark.parametrize("shape,filters,size,stride,pad,groups,bn", CONV_CASES)
def test_conv(make_cfg, rng, shape, filters, size, stride, pad, groups, bn):
    opts = {"filters": filters, "size": size, "stride": stride, "pad": 1 if pad else 0,
            "groups": groups, "batch_normalize": bn, "activation": "leaky"}
    net = build(make_cfg, shape, ("convolutional", opts))
    p = randomize_conv(net, 0, rng, bn)
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    wts = p["weights"].reshape(filters, shape[0] // groups, size, size)
    ref = conv_ref(x, wts, p["biases"], size, stride, size // 2 if pad else 0, groups,
                   (p["scales"], p["rolling_mean"], p["rolling_variance"]) if bn else None, "leaky")
    assert y.shape == ref.shape
    assert net.layers[0]["output_shape"] == ref.shape[1:]
    assert rel_err(y, ref) < TOL


def test_conv_padding_option(make_cfg, rng):
    """padding=N sets the pad directly when pad=0."""
    net = build(make_cfg, (2, 5, 6), ("convolutional", {"filters": 3, "size": 3, "padding": 2,
                                                        "activation": "linear"}))
    p = randomize_conv(net, 0, rng, 0)
    x = rand_input(rng, 2, (2, 5, 6))
    ref = conv_ref(x, p["weights"].reshape(3, 2, 3, 3), p["biases"], 3, 1, 2, 1)
    y = net.forward(x)
    assert y.shape == (2, 3, 7, 8)
    assert rel_err(y, ref) < TOL


@pytest.mark.parametrize("act", ACTS)
def test_conv_activations(make_cfg, rng, act):
    shape = (3, 5, 7)
    net = build(make_cfg, shape, ("convolutional", {"filters": 4, "size": 3, "pad": 1,
                                                    "batch_normalize": 1, "activation": act}))
    p = randomize_conv(net, 0, rng, 1)
    x = rand_input(rng, 2, shape) * 2
    y = net.forward(x)
    ref = conv_ref(x, p["weights"].reshape(4, 3, 3, 3), p["biases"], 3, 1, 1, 1,
                   (p["scales"], p["rolling_mean"], p["rolling_variance"]), act)
    assert rel_err(y, ref) < TOL
    assert net.layers[0]["activation"] == act


def test_conv_bad_activation(make_cfg):
    path = make_cfg({"width": 4, "height": 4, "channels": 1},
                    ("convolutional", {"filters": 2, "size": 3, "activation": "sigmoidish"}))
    expect_error(path, line_of(path, "activation"), "sigmoidish")


# ---------------------------------------------------------------- maxpool

def maxpool_ref(x, size, stride, padding):
    n, c, h, w = x.shape
    oh = (h + padding - size) // stride + 1
    ow = (w + padding - size) // stride + 1
    off = -(padding // 2)
    out = np.full((n, c, oh, ow), -np.inf, np.float32)
    for y in range(oh):
        for xx in range(ow):
            for dy in range(size):
                for dx in range(size):
                    iy, ix = off + y * stride + dy, off + xx * stride + dx
                    if 0 <= iy < h and 0 <= ix < w:
                        out[:, :, y, xx] = np.maximum(out[:, :, y, xx], x[:, :, iy, ix])
    return out


@pytest.mark.parametrize("shape,size,stride,padding", [
    ((3, 8, 8), 2, 2, None),
    ((3, 7, 9), 2, 2, None),
    ((2, 6, 37), 2, 2, None),    # wide rows: the 8-output vector steps plus a tail
    ((1, 4, 34), 2, 2, 0),
    ((2, 7, 5), 2, 1, None),     # yolov2-tiny's last maxpool: same size out
    ((2, 13, 13), 2, 1, None),
    ((2, 5, 29), 2, 1, 1),       # wide rows at stride 1: vector steps plus a tail
    ((2, 9, 7), 3, 2, None),
    ((2, 9, 7), 3, 1, None),
    ((2, 9, 7), 3, 2, 0),
    ((1, 10, 11), 5, 3, 2),
    ((2, 6, 5), 3, 1, 4),
    ((2, 6, 5), 1, 1, None),
])
def test_maxpool(make_cfg, rng, shape, size, stride, padding):
    opts = {"size": size, "stride": stride}
    if padding is not None:
        opts["padding"] = padding
    net = build(make_cfg, shape, ("maxpool", opts))
    pad = size - 1 if padding is None else padding
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    ref = maxpool_ref(x, size, stride, pad)
    c, h, w = shape
    assert y.shape == (2, c, (h + pad - size) // stride + 1, (w + pad - size) // stride + 1)
    assert np.array_equal(y, ref)
    info = net.layers[0]
    assert (info["size"], info["stride"], info["pad"]) == (size, stride, pad)


def test_forward_ms_per_layer(make_cfg, rng):
    """Each layer's wall time in the last forward: positive, and together
    no more than the whole forward."""
    import time
    net = build(make_cfg, (3, 32, 32), ("convolutional", conv_opts(8, 3, act="leaky")),
                ("maxpool", {"size": 2, "stride": 2}), ("convolutional", conv_opts(4, 1)))
    assert all(layer["forward_ms"] == 0 for layer in net.layers)  # nothing run yet
    x = rand_input(rng, 2, (3, 32, 32))
    t = time.perf_counter()
    net.forward(x)
    wall = (time.perf_counter() - t) * 1e3
    ms = [layer["forward_ms"] for layer in net.layers]
    assert all(m > 0 for m in ms)
    assert sum(ms) <= wall


def test_maxpool_size2_stride1_keeps_size(make_cfg, rng):
    net = build(make_cfg, (4, 13, 13), ("maxpool", {"size": 2, "stride": 1}))
    assert net.layers[0]["output_shape"] == (4, 13, 13)


def test_maxpool_many_small_planes(make_cfg, rng):
    """Small planes go 24 to an item (13x13: at least 4096 outputs each);
    100 planes leave a part item. 1 and 2 threads."""
    path = make_cfg({"width": 13, "height": 13, "channels": 50}, ("maxpool", {"size": 2, "stride": 1}))
    x = rand_input(rng, 2, (50, 13, 13))
    for threads in (1, 2):
        y = darknet_py.Network(path, batch=2, threads=threads).forward(x)
        assert np.array_equal(y, maxpool_ref(x, 2, 1, 1))


def test_maxpool_size_defaults_to_stride(make_cfg, rng):
    net = build(make_cfg, (2, 8, 6), ("maxpool", {"stride": 2}))
    x = rand_input(rng, 2, (2, 8, 6))
    y = net.forward(x)
    assert y.shape == (2, 2, 4, 3)
    assert np.array_equal(y, x.reshape(2, 2, 4, 2, 3, 2).max(axis=(3, 5)))


@pytest.mark.parametrize("opts,key", [
    ({"size": 2, "stride": 0}, "stride"),
    ({"size": 0, "stride": 1}, "size"),
    ({"size": 2, "stride": 2, "padding": -1}, "padding"),
    ({"size": 2, "stride": 2, "padding": 3}, "padding"),
    ({"size": "two", "stride": 2}, "size"),
])
def test_maxpool_bad_options(make_cfg, opts, key):
    path = make_cfg({"width": 8, "height": 8, "channels": 1}, ("maxpool", opts))
    expect_error(path, line_of(path, key), "[maxpool]")


def test_maxpool_too_big_for_input(make_cfg):
    path = make_cfg({"width": 3, "height": 3, "channels": 1}, ("maxpool", {"size": 5, "stride": 1, "padding": 0}))
    expect_error(path, header_line(path, "maxpool"), "maxpool")


# ---------------------------------------------------------------- avgpool

@pytest.mark.parametrize("shape", [(3, 5, 7), (1, 1, 1), (6, 13, 2)])
def test_avgpool(make_cfg, rng, shape):
    net = build(make_cfg, shape, ("avgpool", {}))
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    assert y.shape == (2, shape[0], 1, 1)
    assert rel_err(y[:, :, 0, 0], x.astype(np.float64).mean(axis=(2, 3))) < TOL


# ---------------------------------------------------------------- route

def conv_opts(filters, size=1, stride=1, act="linear"):
    return {"filters": filters, "size": size, "stride": stride, "pad": 1, "activation": act}


def test_route_concat(make_cfg, rng):
    shape = (3, 5, 7)
    net = build(make_cfg, shape,
                ("convolutional", conv_opts(4)),
                ("convolutional", conv_opts(2, 3)),
                ("convolutional", conv_opts(5)),
                ("route", {"layers": "-1, 0, -2"}))
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    a, b, c = (net.layer_output(i) for i in range(3))
    assert y.shape == (2, 11, 5, 7)
    assert net.layers[3]["output_shape"] == (11, 5, 7)
    assert np.array_equal(y, np.concatenate([c, a, b], axis=1))
    # A conv after the route sees the concatenation.
    assert np.abs(y).max() > 0


def test_route_single_and_feeds_next(make_cfg, rng):
    shape = (2, 6, 6)
    net = build(make_cfg, shape,
                ("convolutional", conv_opts(3)),
                ("maxpool", {"size": 2, "stride": 2}),
                ("route", {"layers": -2}),
                ("convolutional", conv_opts(2)))
    x = rand_input(rng, 2, shape)
    net.forward(x)
    assert np.array_equal(net.layer_output(2), net.layer_output(0))
    p = net.params(3)
    ref = conv_ref(net.layer_output(0), p["weights"].reshape(2, 3, 1, 1), p["biases"], 1, 1, 0, 1)
    assert net.layers[3]["input_shape"] == (3, 6, 6)
    assert rel_err(net.layer_output(3), ref) < TOL


@pytest.mark.parametrize("groups,group_id", [(2, 0), (2, 1), (3, 2)])
def test_route_groups(make_cfg, rng, groups, group_id):
    shape = (2, 4, 5)
    net = build(make_cfg, shape,
                ("convolutional", conv_opts(6)),
                ("convolutional", conv_opts(12)),
                ("route", {"layers": "0,1", "groups": groups, "group_id": group_id}))
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    a, b = net.layer_output(0), net.layer_output(1)
    ca, cb = 6 // groups, 12 // groups
    ref = np.concatenate([a[:, group_id * ca:(group_id + 1) * ca], b[:, group_id * cb:(group_id + 1) * cb]], axis=1)
    assert y.shape == ref.shape
    assert np.array_equal(y, ref)


def test_route_resize(make_cfg, rng):
    net = build(make_cfg, (2, 6, 6), ("convolutional", conv_opts(3)), ("convolutional", conv_opts(2)),
                ("route", {"layers": "-1,-2"}))
    x = rand_input(rng, 3, (2, 5, 9))
    y = net.forward(x)
    assert y.shape == (3, 5, 5, 9)
    assert np.array_equal(y, np.concatenate([net.layer_output(1), net.layer_output(0)], axis=1))


def test_route_size_mismatch(make_cfg):
    path = make_cfg({"width": 8, "height": 8, "channels": 1},
                    ("convolutional", conv_opts(2)),
                    ("maxpool", {"size": 2, "stride": 2}),
                    ("route", {"layers": "-1,-2"}))
    expect_error(path, header_line(path, "route"), "route", "width or height")


@pytest.mark.parametrize("layers", ["-3", "2", "5", "0,x"])
def test_route_bad_ref(make_cfg, layers):
    path = make_cfg({"width": 8, "height": 8, "channels": 1},
                    ("convolutional", conv_opts(2)), ("convolutional", conv_opts(2)),
                    ("route", {"layers": layers}))
    expect_error(path, line_of(path, "layers"), "layers")


def test_route_bad_groups(make_cfg):
    path = make_cfg({"width": 8, "height": 8, "channels": 1},
                    ("convolutional", conv_opts(3)),
                    ("route", {"layers": "-1", "groups": 2, "group_id": 2}))
    expect_error(path, line_of(path, "group_id"), "group_id")
    path = make_cfg({"width": 8, "height": 8, "channels": 1},
                    ("convolutional", conv_opts(3)),
                    ("route", {"layers": "-1", "groups": 2}))
    with pytest.raises(darknet_py.DarknetError, match=r"groups=2 does not divide"):
        darknet_py.Network(path)


# ---------------------------------------------------------------- reorg

def reorg_ref(x, stride, reverse):
    """Darknet reorg_cpu over the input dims, written with index arrays."""
    n, c, h, w = x.shape
    s = stride
    oc = c // (s * s)
    k, j, i = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    in_idx = i + w * (j + h * k)
    c2 = k % oc
    off = k // oc
    w2 = i * s + off % s
    h2 = j * s + off // s
    out_idx = w2 + w * s * (h2 + h * s * c2)
    flat = x.reshape(n, -1)
    out = np.empty_like(flat)
    if reverse:
        out[:, out_idx.ravel()] = flat[:, in_idx.ravel()]
        return out.reshape(n, c // (s * s), h * s, w * s)
    out[:, in_idx.ravel()] = flat[:, out_idx.ravel()]
    return out.reshape(n, c * s * s, h // s, w // s)


def reorg_ref_loops(x, stride):
    """The forward mapping again as plain loops (checks the index-array version)."""
    n, c, h, w = x.shape
    s = stride
    oc = c // (s * s)
    flat = x.reshape(n, -1)
    out = np.empty_like(flat)
    for b in range(n):
        for k in range(c):
            for j in range(h):
                for i in range(w):
                    c2, off = k % oc, k // oc
                    w2, h2 = i * s + off % s, j * s + off // s
                    out[b, i + w * (j + h * k)] = flat[b, w2 + w * s * (h2 + h * s * c2)]
    return out


@pytest.mark.parametrize("shape,stride", [((8, 6, 4), 2), ((4, 2, 2), 2), ((9, 6, 3), 3), ((3, 5, 7), 1),
                                          ((16, 4, 6), 2)])
def test_reorg(make_cfg, rng, shape, stride):
    net = build(make_cfg, shape, ("reorg", {"stride": stride}))
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    c, h, w = shape
    assert y.shape == (2, c * stride * stride, h // stride, w // stride)
    ref = reorg_ref(x, stride, 0)
    assert np.array_equal(y, ref)
    assert np.array_equal(y.reshape(2, -1), reorg_ref_loops(x, stride))
    assert np.array_equal(np.sort(y.ravel()), np.sort(x.ravel()))


def test_reorg_is_not_space_to_depth(make_cfg):
    """Darknet's order differs from a plain space-to-depth; pin one known value."""
    net = build(make_cfg, (4, 2, 2), ("reorg", {"stride": 2}), batch=1)
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 2, 2)
    y = net.forward(x).ravel()
    # output[in_index] = input[out_index]: in_index 1 (i=1,j=0,k=0) reads
    # out_index = w2 + 4*h2 with w2 = 2, h2 = 0 -> 2.
    assert y[1] == 2.0
    assert list(y[:4]) == [0.0, 2.0, 8.0, 10.0]


@pytest.mark.parametrize("shape,stride", [((8, 3, 2), 2), ((18, 2, 3), 3), ((4, 1, 1), 2)])
def test_reorg_reverse(make_cfg, rng, shape, stride):
    net = build(make_cfg, shape, ("reorg", {"stride": stride, "reverse": 1}))
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    c, h, w = shape
    assert y.shape == (2, c // (stride * stride), h * stride, w * stride)
    assert np.array_equal(y, reorg_ref(x, stride, 1))


def test_reorg_then_reverse(make_cfg, rng):
    """Darknet's reverse reorg uses its own input dims, so it does not undo a
    forward reorg: the chain is a permutation of x but not x itself."""
    net = build(make_cfg, (8, 6, 4), ("reorg", {"stride": 2}), ("reorg", {"stride": 2, "reverse": 1}))
    x = rand_input(rng, 2, (8, 6, 4))
    y = net.forward(x)
    assert y.shape == x.shape
    assert np.array_equal(y, reorg_ref(reorg_ref(x, 2, 0), 2, 1))
    assert np.array_equal(np.sort(y.ravel()), np.sort(x.ravel()))
    assert not np.array_equal(y, x)


@pytest.mark.parametrize("shape,opts", [
    ((8, 5, 4), {"stride": 2}),                  # h not divisible
    ((8, 4, 3), {"stride": 2}),                  # w not divisible
    ((6, 4, 4), {"stride": 2}),                  # c not divisible by 4
    ((6, 3, 3), {"stride": 2, "reverse": 1}),    # c not divisible by 4
])
def test_reorg_bad_shapes(make_cfg, shape, opts):
    c, h, w = shape
    path = make_cfg({"width": w, "height": h, "channels": c}, ("reorg", opts))
    expect_error(path, header_line(path, "reorg"), "[reorg]", "divisible")


def test_reorg_bad_options(make_cfg):
    path = make_cfg({"width": 4, "height": 4, "channels": 4}, ("reorg", {"stride": 0}))
    expect_error(path, line_of(path, "stride"), "stride")
    path = make_cfg({"width": 4, "height": 4, "channels": 4}, ("reorg", {"stride": 2, "flatten": 1}))
    expect_error(path, line_of(path, "flatten"), "flatten")


# ---------------------------------------------------------------- shortcut

def shortcut_ref(x, add, alpha, beta, act):
    """Darknet shortcut_cpu: x (input, N x c2 x h2 x w2), add (from, N x c1 x h1 x w1)."""
    _, c2, h2, w2 = x.shape
    _, c1, h1, w1 = add.shape
    stride = max(1, w1 // w2)
    sample = max(1, w2 // w1)
    minw, minh, minc = min(w1, w2), min(h1, h2), min(c1, c2)
    out = x.astype(np.float64).copy()
    for k in range(minc):
        for j in range(minh):
            for i in range(minw):
                out[:, k, j * sample, i * sample] = (alpha * out[:, k, j * sample, i * sample]
                                                     + beta * add[:, k, j * stride, i * stride])
    return act_ref(out, act)


@pytest.mark.parametrize("alpha,beta,act", [(1, 1, "linear"), (0.5, -2, "leaky"), (1, 0.25, "logistic")])
def test_shortcut_same_shape(make_cfg, rng, alpha, beta, act):
    shape = (3, 5, 7)
    sc = {"from": -2, "activation": act}
    if (alpha, beta) != (1, 1):
        sc.update(alpha=alpha, beta=beta)
    net = build(make_cfg, shape, ("convolutional", conv_opts(4)), ("convolutional", conv_opts(4, 3)),
                ("shortcut", sc))
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    ref = shortcut_ref(net.layer_output(1), net.layer_output(0), alpha, beta, act)
    assert y.shape == (2, 4, 5, 7)
    assert rel_err(y, ref) < TOL
    if (alpha, beta, act) == (1, 1, "linear"):
        assert rel_err(y, net.layer_output(0) + net.layer_output(1)) < TOL


def test_shortcut_from_larger(make_cfg, rng):
    """from layer 8x8x4, input 4x4x6: stride 2, first 4 channels get the add."""
    shape = (2, 8, 8)
    net = build(make_cfg, shape, ("convolutional", conv_opts(4)), ("maxpool", {"size": 2, "stride": 2}),
                ("convolutional", conv_opts(6)), ("shortcut", {"from": 0}))
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    inp, add = net.layer_output(2), net.layer_output(0)
    assert y.shape == inp.shape == (2, 6, 4, 4)
    assert rel_err(y, shortcut_ref(inp, add, 1, 1, "linear")) < TOL
    assert np.array_equal(y[:, 4:], inp[:, 4:])
    assert rel_err(y[:, :4], inp[:, :4] + add[:, :4, ::2, ::2]) < TOL


def test_shortcut_from_smaller(make_cfg, rng):
    """from layer 3x3x3 (odd), input 7x7x5: sample 2, only every other cell changes."""
    shape = (3, 6, 6)
    net = build(make_cfg, shape, ("maxpool", {"size": 2, "stride": 2}),
                ("upsample", {"stride": 2}), ("convolutional", conv_opts(5, 2, 1)),
                ("shortcut", {"from": 0, "alpha": 0.5, "activation": "relu"}))
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    inp, add = net.layer_output(2), net.layer_output(0)
    assert add.shape == (2, 3, 3, 3) and inp.shape == (2, 5, 7, 7)
    ref = shortcut_ref(inp, add, 0.5, 1, "relu")
    assert rel_err(y, ref) < TOL
    assert np.array_equal(y[:, :, 1::2], np.maximum(inp[:, :, 1::2], 0))


def test_shortcut_errors(make_cfg):
    base = {"width": 8, "height": 6, "channels": 1}
    path = make_cfg(base, ("convolutional", conv_opts(2)), ("shortcut", {"from": -2}))
    expect_error(path, line_of(path, "from"), "from=-2")
    path = make_cfg(base, ("convolutional", conv_opts(2)), ("shortcut", {"activation": "linear"}))
    expect_error(path, header_line(path, "shortcut"), "from")
    path = make_cfg(base, ("convolutional", conv_opts(2)), ("shortcut", {"from": -1, "activation": "nope"}))
    expect_error(path, line_of(path, "activation", 2), "nope")
    # 8x6 from layer vs 3x2 input: w ratio 2, h ratio 3.
    path = make_cfg(base, ("convolutional", conv_opts(2)), ("maxpool", {"size": 3, "stride": 3}),
                    ("shortcut", {"from": 0}))
    expect_error(path, header_line(path, "shortcut"), "[shortcut]", "same factor")


# ---------------------------------------------------------------- upsample

def upsample_ref(x, stride, scale):
    if stride > 0:
        return scale * x.astype(np.float64).repeat(stride, axis=2).repeat(stride, axis=3)
    s = -stride
    n, c, h, w = x.shape
    return scale * x.astype(np.float64).reshape(n, c, h // s, s, w // s, s).sum(axis=(3, 5))


@pytest.mark.parametrize("shape,stride,scale", [((3, 5, 7), 2, None), ((2, 3, 4), 3, 0.5), ((1, 1, 1), 4, 2.0),
                                                ((2, 6, 4), -2, None), ((2, 6, 9), -3, 0.25)])
def test_upsample(make_cfg, rng, shape, stride, scale):
    opts = {"stride": stride}
    if scale is not None:
        opts["scale"] = scale
    net = build(make_cfg, shape, ("upsample", opts))
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    ref = upsample_ref(x, stride, 1.0 if scale is None else scale)
    assert y.shape == ref.shape
    assert rel_err(y, ref) < TOL


def test_upsample_default_stride(make_cfg, rng):
    net = build(make_cfg, (2, 3, 5), ("upsample", {}))
    x = rand_input(rng, 2, (2, 3, 5))
    assert np.array_equal(net.forward(x), x.repeat(2, axis=2).repeat(2, axis=3))


def test_upsample_errors(make_cfg):
    path = make_cfg({"width": 4, "height": 4, "channels": 1}, ("upsample", {"stride": 0}))
    expect_error(path, line_of(path, "stride"), "stride")
    path = make_cfg({"width": 5, "height": 4, "channels": 1}, ("upsample", {"stride": -2}))
    expect_error(path, header_line(path, "upsample"), "[upsample]", "divisible")
    path = make_cfg({"width": 4, "height": 4, "channels": 1}, ("upsample", {"scale": "big"}))
    expect_error(path, line_of(path, "scale"), "scale")


# ---------------------------------------------------------------- connected

def connected_ref(x, p, outputs, bn, act):
    n = x.shape[0]
    w = p["weights"].reshape(outputs, -1).astype(np.float64)
    out = x.reshape(n, -1).astype(np.float64) @ w.T
    if bn:
        out = (out - p["rolling_mean"]) / np.sqrt(p["rolling_variance"] + 1e-6) * p["scales"]
    out = out + p["biases"]
    return act_ref(out, act)


@pytest.mark.parametrize("shape,outputs,bn,act", [((3, 5, 4), 7, 0, "logistic"), ((3, 5, 4), 7, 1, "leaky"),
                                                  ((11, 1, 1), 1, 0, "linear"), ((2, 3, 3), 13, 1, "tanh")])
def test_connected(make_cfg, rng, shape, outputs, bn, act):
    opts = {"output": outputs, "activation": act}
    if bn:
        opts["batch_normalize"] = 1
    net = build(make_cfg, shape, ("connected", opts), batch=3)
    inputs = int(np.prod(shape))
    names = list(net.params(0))
    assert names == (["biases", "weights"] + (["scales", "rolling_mean", "rolling_variance"] if bn else []))
    p = net.params(0)
    assert p["weights"].size == inputs * outputs
    p["biases"][:] = rng.standard_normal(outputs)
    p["weights"][:] = rng.standard_normal(inputs * outputs) * 0.3
    if bn:
        p["scales"][:] = rng.uniform(0.5, 1.5, outputs)
        p["rolling_mean"][:] = rng.standard_normal(outputs)
        p["rolling_variance"][:] = rng.uniform(0.2, 2, outputs)
    x = rand_input(rng, 3, shape)
    y = net.forward(x)
    assert y.shape == (3, outputs, 1, 1)
    assert net.layers[0]["output_shape"] == (outputs, 1, 1)
    assert rel_err(y.reshape(3, outputs), connected_ref(x, p, outputs, bn, act)) < TOL


def test_connected_default_init_and_defaults(make_cfg, rng):
    net = build(make_cfg, (2, 4, 4), ("connected", {"batch_normalize": 1}))
    p = net.params(0)
    assert p["biases"].size == 1 and p["weights"].size == 32
    scale = np.sqrt(2 / 32)
    assert np.all(np.abs(p["weights"]) <= scale) and np.std(p["weights"]) > 0
    assert np.all(p["scales"] == 1) and np.all(p["rolling_variance"] == 1)
    x = rand_input(rng, 2, (2, 4, 4))
    y = net.forward(x)
    assert net.layers[0]["activation"] == "logistic"
    assert rel_err(y.reshape(2, 1), connected_ref(x, p, 1, 1, "logistic")) < TOL


def test_connected_chain_and_resize_error(make_cfg, rng):
    net = build(make_cfg, (2, 3, 3), ("connected", {"output": 5, "activation": "relu"}),
                ("connected", {"output": 3, "activation": "linear"}))
    x = rand_input(rng, 2, (2, 3, 3))
    y = net.forward(x)
    h = connected_ref(x, net.params(0), 5, 0, "relu")
    assert rel_err(y.reshape(2, 3), connected_ref(h, net.params(1), 3, 0, "linear")) < TOL
    with pytest.raises(darknet_py.DarknetError, match=r"\[connected\].*weights were made for 18"):
        net.forward(rand_input(rng, 2, (2, 4, 4)))


def test_connected_bad_options(make_cfg):
    path = make_cfg({"width": 2, "height": 2, "channels": 1}, ("connected", {"output": 0}))
    expect_error(path, line_of(path, "output"), "output")
    path = make_cfg({"width": 2, "height": 2, "channels": 1}, ("connected", {"output": 2, "activation": "bogus"}))
    expect_error(path, line_of(path, "activation"), "bogus")


# ---------------------------------------------------------------- softmax

def softmax_ref(x, groups, temperature):
    n = x.shape[0]
    v = x.reshape(n, groups, -1).astype(np.float64) / temperature
    e = np.exp(v - v.max(axis=2, keepdims=True))
    return (e / e.sum(axis=2, keepdims=True)).reshape(x.shape)


@pytest.mark.parametrize("shape,groups,temperature", [((10, 1, 1), 1, None), ((4, 3, 5), 3, None),
                                                      ((6, 2, 2), 4, 2.5), ((5, 1, 1), 5, None),
                                                      ((3, 3, 3), 1, 0.5)])
def test_softmax(make_cfg, rng, shape, groups, temperature):
    opts = {"groups": groups}
    if temperature is not None:
        opts["temperature"] = temperature
    net = build(make_cfg, shape, ("softmax", opts))
    x = rand_input(rng, 2, shape) * 3
    y = net.forward(x)
    assert y.shape == x.shape
    ref = softmax_ref(x, groups, 1.0 if temperature is None else temperature)
    assert rel_err(y, ref) < TOL
    assert np.allclose(y.reshape(2, groups, -1).sum(axis=2), 1, atol=1e-5)


def test_softmax_stable(make_cfg):
    net = build(make_cfg, (4, 1, 1), ("softmax", {}), batch=1)
    x = np.array([1000, 999, -1000, 1000], np.float32).reshape(1, 4, 1, 1)
    y = net.forward(x)
    assert np.all(np.isfinite(y))
    assert rel_err(y, softmax_ref(x, 1, 1)) < TOL


def test_softmax_after_connected(make_cfg, rng):
    net = build(make_cfg, (3, 2, 2), ("connected", {"output": 6, "activation": "linear"}), ("soft", {"groups": 2}))
    x = rand_input(rng, 2, (3, 2, 2))
    y = net.forward(x)
    assert y.shape == (2, 6, 1, 1)
    assert rel_err(y, softmax_ref(net.layer_output(0), 2, 1)) < TOL


@pytest.mark.parametrize("opts,key", [({"groups": 4}, "groups"), ({"groups": 0}, "groups"),
                                      ({"temperature": 0}, "temperature"), ({"tree": "data/9k.tree"}, "tree")])
def test_softmax_bad_options(make_cfg, opts, key):
    path = make_cfg({"width": 1, "height": 1, "channels": 6}, ("softmax", opts))
    expect_error(path, line_of(path, key), "[softmax]")


# ---------------------------------------------------------------- dropout

def test_dropout_identity(make_cfg, rng):
    net = build(make_cfg, (3, 5, 4), ("dropout", {"probability": 0.3}), ("dropout", {}))
    x = rand_input(rng, 2, (3, 5, 4))
    y = net.forward(x)
    assert y.shape == x.shape
    assert np.array_equal(y, x)
    assert net.layers[0]["output_shape"] == (3, 5, 4)


@pytest.mark.parametrize("prob", ["1", "-0.1", "half"])
def test_dropout_bad_probability(make_cfg, prob):
    path = make_cfg({"width": 2, "height": 2, "channels": 1}, ("dropout", {"probability": prob}))
    expect_error(path, line_of(path, "probability"), "probability")


# ---------------------------------------------------------------- whole nets and cfg handling

def test_tiny_like_net(make_cfg, rng):
    """A yolov2-tiny-shaped stack: conv/maxpool (2/2 and 2/1), reorg, route, upsample, shortcut."""
    shape = (3, 16, 16)
    net = build(make_cfg, shape,
                ("convolutional", {"filters": 4, "size": 3, "pad": 1, "batch_normalize": 1, "activation": "leaky"}),
                ("maxpool", {"size": 2, "stride": 2}),                   # 1: 4x8x8
                ("convolutional", {"filters": 8, "size": 3, "pad": 1, "activation": "leaky"}),
                ("maxpool", {"size": 2, "stride": 1}),                   # 3: 8x8x8
                ("reorg", {"stride": 2}),                                # 4: 32x4x4
                ("route", {"layers": "-2"}),                             # 5: 8x8x8
                ("maxpool", {"size": 2, "stride": 2}),                   # 6: 8x4x4
                ("route", {"layers": "-1,4"}),                           # 7: 40x4x4
                ("upsample", {"stride": 2}),                             # 8: 40x8x8
                ("convolutional", {"filters": 8, "size": 1, "activation": "linear"}),
                ("shortcut", {"from": 3}))                               # 10: 8x8x8
    x = rand_input(rng, 2, shape)
    y = net.forward(x)
    L = net.layer_output
    p0 = net.params(0)
    r0 = conv_ref(x, p0["weights"].reshape(4, 3, 3, 3), p0["biases"], 3, 1, 1, 1,
                  (p0["scales"], p0["rolling_mean"], p0["rolling_variance"]), "leaky")
    assert rel_err(L(0), r0) < TOL
    assert np.array_equal(L(1), maxpool_ref(L(0), 2, 2, 1))
    assert np.array_equal(L(3), maxpool_ref(L(2), 2, 1, 1))
    assert np.array_equal(L(4), reorg_ref(L(3), 2, 0))
    assert np.array_equal(L(7), np.concatenate([L(6), L(4)], axis=1))
    assert np.array_equal(L(8), upsample_ref(L(7), 2, 1).astype(np.float32))
    assert rel_err(y, L(9) + L(3)) < TOL
    shapes = [l["output_shape"] for l in net.layers]
    assert shapes == [(4, 16, 16), (4, 8, 8), (8, 8, 8), (8, 8, 8), (32, 4, 4), (8, 8, 8), (8, 4, 4),
                      (40, 4, 4), (40, 8, 8), (8, 8, 8), (8, 8, 8)]


def test_unknown_option_is_a_warning(make_cfg, rng, capfd):
    path = make_cfg({"width": 4, "height": 4, "channels": 2}, ("maxpool", {"size": 2, "stride": 2, "bogus_key": 3}))
    net = darknet_py.Network(path, batch=1)
    x = rand_input(rng, 1, (2, 4, 4))
    assert np.array_equal(net.forward(x), maxpool_ref(x, 2, 2, 1))
    err = capfd.readouterr().err
    assert "bogus_key" in err
    assert f"{path}:{line_of(path, 'bogus_key')}" in err


@pytest.mark.parametrize("section,opts", [
    ("maxpool", {"size": 2, "stride": 2}), ("avgpool", {}), ("reorg", {"stride": 2}),
    ("upsample", {"stride": 2}), ("connected", {"output": 3}), ("softmax", {}), ("dropout", {}),
    ("route", {"layers": -1}), ("shortcut", {"from": -1}),
])
def test_every_option_is_read(make_cfg, capfd, section, opts):
    """The documented options of each layer are read (no 'unused option' warning)."""
    full = {
        "maxpool": {"padding": 1}, "reorg": {"reverse": 0}, "upsample": {"scale": 1},
        "connected": {"activation": "linear", "batch_normalize": 0}, "softmax": {"groups": 1, "temperature": 1},
        "dropout": {"probability": 0.5}, "route": {"groups": 1, "group_id": 0},
        "shortcut": {"activation": "linear", "alpha": 1, "beta": 1},
    }.get(section, {})
    pre = [("convolutional", conv_opts(4))]
    path = make_cfg({"width": 4, "height": 4, "channels": 4}, *pre, (section, {**opts, **full}))
    darknet_py.Network(path)
    err = capfd.readouterr().err
    assert not re.search(r"unused option", err), err


# ---------------------------------------------------------------- Darknet's own cfgs

def adapt_reference_cfg(src, dst, size):
    """Copy a reference cfg with width=height=size and each detector section
    ([yolo], [region], [detection], not this file's subject) replaced by an
    identity [dropout], so layer indexes stay those of Darknet."""
    out, skip = [], False
    with open(src) as f:
        for line in f:
            s = line.strip()
            if s.startswith("["):
                skip = s in ("[yolo]", "[region]", "[detection]")
                out.append("[dropout]" if skip else s)
            elif not skip:
                out.append(re.sub(r"^(width|height)\s*=.*", lambda m: f"{m.group(1)}={size}", s))
    dst.write_text("\n".join(out) + "\n")
    return str(dst)


@pytest.mark.parametrize("name,size,shapes", [
    ("yolov3-tiny.cfg", 128, {11: (512, 4, 4), 17: (256, 4, 4), 19: (128, 8, 8), 20: (384, 8, 8),
                              22: (255, 8, 8)}),
    ("resnet18.cfg", 64, {16: (256, 4, 4), 26: (512, 1, 1), 28: (1000, 1, 1)}),
])
def test_reference_cfg(tmp_path, rng, capfd, name, size, shapes):
    from conftest import REF_CFG
    src = f"{REF_CFG}/{name}"
    try:
        path = adapt_reference_cfg(src, tmp_path / name, size)
    except FileNotFoundError:
        pytest.skip(f"{src} not available")
    net = darknet_py.Network(path, batch=1)
    assert "unused option" not in capfd.readouterr().err
    for i, shape in shapes.items():
        assert net.layers[i]["output_shape"] == shape, (i, net.layers[i])
    y = net.forward(rng.random((1, 3, size, size), dtype=np.float32))
    assert np.all(np.isfinite(y))
    L = net.layer_output
    if name == "resnet18.cfg":
        # Strided residual block: shortcut 16 adds layer 13 (8x8) into 4x4 with stride 2.
        assert L(13).shape[2:] == (8, 8) and L(15).shape[2:] == (4, 4)
        assert rel_err(L(16), shortcut_ref(L(15), L(13), 1, 1, "leaky")) < TOL
        assert rel_err(L(26)[:, :, 0, 0], L(25).astype(np.float64).mean(axis=(2, 3))) < TOL
        assert rel_err(y, softmax_ref(L(27), 1, 1)) < TOL
    else:
        assert np.array_equal(L(11), maxpool_ref(L(10), 2, 1, 1))
        assert np.array_equal(L(20), np.concatenate([L(19), L(8)], axis=1))
