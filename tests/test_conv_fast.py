"""The fast [convolutional] forward paths (Winograd F(4x4,3x3), implicit-im2col
GEMM with fused epilogue) against a float64 NumPy reference convolution, on
odd shapes (maps that are not multiples of the 4x4 tile, 1x1 maps, channel
counts that are not multiples of the kernel blocks), with and without batch
norm, pad=1 and padding=0, batch 1 and 3, 1 and 2 threads. DN_CONV_ALGO
forces a path (see csrc/layers/conv.c): 'winograd' (3x3 stride 1 groups 1)
and 'direct' (stride 1 groups 1) fall back to 'gemm' where they do not
apply (groups > 1, stride 2, other sizes)."""
import numpy as np
import pytest

from conftest import rel_err, simd_levels

dp = pytest.importorskip("darknet_py")

TOL = 1e-4


def ref_conv(x, w, stride, pad, groups):
    """x: N x C x H x W, w: F x C/g x k x k -> N x F x OH x OW (float64)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, h, wd = x.shape
    f, cg, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - k) // stride + 1
    ow = (wd + 2 * pad - k) // stride + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
    win = win[:, :, ::stride, ::stride][:, :, :oh, :ow]  # N C OH OW k k
    fg = f // groups
    outs = []
    for g in range(groups):
        outs.append(np.einsum("nchwij,fcij->nfhw", win[:, g * cg:(g + 1) * cg], w[g * fg:(g + 1) * fg]))
    return np.concatenate(outs, axis=1)


def ref_layer(x, p, stride, pad, groups, bn, act):
    y = ref_conv(x, p["weights"], stride, pad, groups)
    f = y.shape[1]
    b = p["biases"].astype(np.float64).reshape(1, f, 1, 1)
    if bn:
        sc = p["scales"].astype(np.float64).reshape(1, f, 1, 1)
        m = p["rolling_mean"].astype(np.float64).reshape(1, f, 1, 1)
        v = p["rolling_variance"].astype(np.float64).reshape(1, f, 1, 1)
        y = (y - m) * sc / np.sqrt(v + 1e-6) + b
    else:
        y = y + b
    if act == "leaky":
        y = np.where(y > 0, y, 0.1 * y)
    elif act == "logistic":
        y = 1 / (1 + np.exp(-y))
    return y


def build(make_cfg, rng, *, c, h, w, filters, size=3, stride=1, pad=True, padding=0,
          groups=1, bn=True, act="leaky", batch=1):
    opts = {"filters": filters, "size": size, "stride": stride, "activation": act}
    if pad:
        opts["pad"] = 1
    else:
        opts["padding"] = padding
    if groups != 1:
        opts["groups"] = groups
    if bn:
        opts["batch_normalize"] = 1
    cfg = make_cfg({"width": w, "height": h, "channels": c, "batch": batch}, ("convolutional", opts))
    net = dp.Network(cfg, batch=batch)
    p = net.params(0)
    p["weights"][:] = rng.standard_normal(p["weights"].size).astype(np.float32) * np.sqrt(2.0 / (c // groups * size * size))
    p["biases"][:] = rng.standard_normal(filters).astype(np.float32) * 0.1
    if bn:
        p["scales"][:] = rng.uniform(0.5, 1.5, filters).astype(np.float32)
        p["rolling_mean"][:] = rng.standard_normal(filters).astype(np.float32) * 0.1
        p["rolling_variance"][:] = rng.uniform(0.5, 1.5, filters).astype(np.float32)
    x = rng.standard_normal((batch, c, h, w)).astype(np.float32)
    return net, x


def check(net, x, *, stride=1, pad=1, groups=1, bn=True, act="leaky", threads=1):
    net._net.set_threads(threads)
    y = net.forward(x)
    p = {k: np.array(v) for k, v in net.params(0).items()}
    f = p["biases"].size
    cg = x.shape[1] // groups
    k = int(round(np.sqrt(p["weights"].size / (f * cg))))
    p["weights"] = p["weights"].reshape(f, cg, k, k)
    ref = ref_layer(x, p, stride, pad, groups, bn, act)
    assert y.shape == ref.shape
    err = rel_err(y, ref)
    assert err < TOL, f"rel err {err:.2e}"
    return y


# Output map sizes: not multiples of 4, a single pixel, a 2x5 strip, 13x13
# (yolo's last map), and one with many 8-tile groups and interior tiles.
MAPS = [(7, 9), (13, 13), (1, 1), (2, 5), (29, 38)]
CHANNELS = [(3, 5), (16, 7), (32, 50), (300, 13)]


@pytest.mark.parametrize("algo", ["winograd", "gemm", "direct", "auto"])
@pytest.mark.parametrize("oh,ow", MAPS)
@pytest.mark.parametrize("c,f", CHANNELS)
def test_3x3_pad1(make_cfg, rng, setting, algo, oh, ow, c, f):
    setting("conv_algo", algo)
    net, x = build(make_cfg, rng, c=c, h=oh, w=ow, filters=f)
    check(net, x)


@pytest.mark.parametrize("algo", ["winograd", "gemm", "direct"])
@pytest.mark.parametrize("oh,ow", [(7, 9), (1, 1), (2, 5), (13, 13)])
@pytest.mark.parametrize("bn,act", [(True, "leaky"), (False, "linear"), (False, "leaky"), (True, "logistic")])
def test_3x3_padding0_epilogues(make_cfg, rng, setting, algo, oh, ow, bn, act):
    setting("conv_algo", algo)
    net, x = build(make_cfg, rng, c=12, h=oh + 2, w=ow + 2, filters=10, pad=False, bn=bn, act=act)
    check(net, x, pad=0, bn=bn, act=act)


@pytest.mark.parametrize("algo", ["winograd", "gemm", "direct", "auto"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("oh,ow,c,f", [(7, 9, 16, 24), (13, 13, 64, 96), (52, 52, 16, 32), (2, 5, 8, 8)])
def test_batch3_threads(make_cfg, rng, setting, algo, threads, oh, ow, c, f):
    setting("conv_algo", algo)
    net, x = build(make_cfg, rng, c=c, h=oh, w=ow, filters=f, batch=3)
    y = check(net, x, threads=threads)
    # every image of the batch equals its own batch-1 forward
    for b in range(3):
        net1, _ = build(make_cfg, rng, c=c, h=oh, w=ow, filters=f, batch=1)
        for k, v in net.params(0).items():
            net1.params(0)[k][:] = v
        net1._net.set_threads(threads)
        assert rel_err(net1.forward(x[b:b + 1])[0], y[b]) < TOL


@pytest.mark.parametrize("algo", ["winograd", "gemm", "direct", "auto"])
@pytest.mark.parametrize("size,stride,pad,groups,h,w", [
    (3, 1, True, 2, 7, 9),    # groups > 1: Winograd falls back
    (3, 1, True, 4, 13, 13),
    (3, 2, True, 1, 13, 13),  # stride 2
    (3, 2, True, 1, 8, 10),
    (1, 1, True, 1, 13, 13),  # 1x1 (pad=1 means padding 0 for size 1)
    (1, 1, True, 1, 1, 1),
    (5, 1, True, 1, 9, 7),    # 5x5
    (5, 1, False, 1, 30, 29), # 5x5, padding 0, several pixel blocks per row
    (2, 2, False, 1, 8, 9),
    (1, 2, False, 1, 7, 9),
])
def test_fallback_shapes(make_cfg, rng, setting, algo, size, stride, pad, groups, h, w):
    setting("conv_algo", algo)
    c, f = 8, 12
    net, x = build(make_cfg, rng, c=c, h=h, w=w, filters=f, size=size, stride=stride, pad=pad, groups=groups)
    check(net, x, stride=stride, pad=size // 2 if pad else 0, groups=groups)


@pytest.mark.parametrize("simd", simd_levels())
@pytest.mark.parametrize("algo", ["winograd", "gemm", "direct", "auto"])
def test_matches_reference_path(make_cfg, rng, setting, simd, algo):
    """The fast paths, at every SIMD level's build of the kernels (the setting
    simd), agree with the original im2col + BLAS path."""
    net, x = build(make_cfg, rng, c=24, h=26, w=26, filters=40, batch=2)
    setting("conv_algo", "ref")
    ref = net.forward(x)
    setting("conv_algo", algo)
    setting("simd", simd)
    assert rel_err(net.forward(x), ref) < TOL


def test_weights_change_between_forwards(make_cfg, rng, setting, tmp_path):
    """The cached Winograd weights follow writes through params() views and
    load_weights."""
    setting("conv_algo", "winograd")
    net, x = build(make_cfg, rng, c=16, h=13, w=13, filters=8)
    check(net, x)
    w = net.params(0)["weights"]
    w[5] += 0.5                       # a single weight, in place
    check(net, x)
    w[:] = rng.standard_normal(w.size).astype(np.float32) * 0.2
    check(net, x)
    path = str(tmp_path / "a.weights")
    net.save_weights(path)
    y_saved = net.forward(x)
    w *= 3.0
    check(net, x)
    net.load_weights(path)
    assert rel_err(net.forward(x), y_saved) < 1e-6
    p = net.params(0)
    p["scales"][:] *= 2.0             # BN params are read every forward
    check(net, x)


def test_winograd_cache_notices_negated_weights(make_cfg, rng, setting):
    """The weight hash must change when every weight flips sign."""
    setting("conv_algo", "winograd")
    cfg = make_cfg({"width": 16, "height": 16, "channels": 8},
                   ("convolutional", {"filters": 8, "size": 3, "pad": 1, "activation": "linear"}))
    net = dp.Network(cfg)
    net.params(0)["biases"][:] = 0
    x = rng.random((1, 8, 16, 16), dtype=np.float32)
    y1 = net.forward(x).copy()
    w = net.params(0)["weights"]
    w[:] = -w
    np.testing.assert_allclose(net.forward(x), -y1, rtol=1e-4, atol=1e-4)
