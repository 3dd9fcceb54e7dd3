"""The direct depthwise kernel (csrc/kernels/cpu/depthwise.c; groups =
channels = filters): the inference forward against the float64 NumPy
reference, with every fused epilogue, strides 1-3, paddings 0-2, sizes
1/3/5, odd maps, batch 1 and 3, 1 and 2 threads; the training backward
(dL/dinput, dL/dweights) against the im2col reference path
(DN_CONV_ALGO=ref) and against finite differences, ternary layers
included; results identical for 1 and 2 threads."""
import numpy as np
import pytest

from conftest import rel_err, simd_levels
from test_conv_fast import build, check
from test_grad import analytic, gradcheck, train_net

SHAPES = [
    # c, h, w, size, stride, pad (1: size//2), padding (when pad=0)
    (8, 13, 13, 3, 1, True, 0),
    (16, 20, 20, 3, 2, True, 0),
    (5, 7, 9, 3, 2, True, 0),      # odd map, stride 2
    (4, 1, 1, 3, 1, True, 0),      # one pixel
    (6, 11, 6, 5, 1, True, 0),     # 5x5
    (3, 9, 10, 5, 3, False, 2),    # stride 3, padding 2
    (7, 6, 5, 3, 1, False, 0),     # no padding
    (4, 8, 8, 1, 1, True, 0),      # 1x1 depthwise
    (9, 10, 7, 2, 2, False, 1),    # even size
]


@pytest.mark.parametrize("simd", simd_levels())
@pytest.mark.parametrize("algo", ["auto", "direct", "gemm"])
@pytest.mark.parametrize("c,h,w,size,stride,pad,padding", SHAPES)
def test_forward(make_cfg, rng, setting, simd, algo, c, h, w, size, stride, pad, padding):
    """Every SIMD level's build of the kernel (the setting simd) against NumPy."""
    setting("conv_algo", algo)
    setting("simd", simd)
    net, x = build(make_cfg, rng, c=c, h=h, w=w, filters=c, size=size, stride=stride, pad=pad,
                   padding=padding, groups=c, batch=3)
    check(net, x, stride=stride, pad=size // 2 if pad else padding, groups=c, threads=2)


@pytest.mark.parametrize("bn,act", [(True, "leaky"), (False, "linear"), (False, "relu"), (True, "relie"),
                                    (True, "logistic"), (False, "mish")])
def test_forward_epilogues(make_cfg, rng, setting, bn, act):
    """Fused (linear, leaky, relu, relie) and separate activations, against
    the im2col reference path (and NumPy where ref_layer knows the act)."""
    net, x = build(make_cfg, rng, c=12, h=15, w=14, filters=12, stride=2, groups=12, bn=bn, act=act)
    if act in ("leaky", "linear", "logistic"):
        check(net, x, stride=2, groups=12, bn=bn, act=act)
    setting("conv_algo", "ref")
    ref = net.forward(x).copy()
    setting("conv_algo", "auto")
    assert rel_err(net.forward(x), ref) < 1e-5


def dw(c, size=3, stride=1, act="linear", **opts):
    o = {"filters": c, "size": size, "stride": stride, "pad": 1, "groups": c, "activation": act}
    o.update(opts)
    return ("convolutional", o)


BACKWARD = [
    ((6, 9, 8), dict(stride=1)),
    ((5, 9, 8), dict(stride=2, batch_normalize=1, act="leaky")),
    ((4, 7, 10), dict(size=5, stride=3, pad=0, padding=2)),
    ((3, 6, 5), dict(size=2, stride=2, pad=0, padding=1)),
    ((4, 5, 5), dict(stride=1, pad=0, ternary=1)),
    ((8, 7, 7), dict(stride=2, ternary=1, ternary_scale="filter", batch_normalize=1)),
]


@pytest.mark.parametrize("simd", simd_levels())
@pytest.mark.parametrize("shape,opts", BACKWARD, ids=[str(i) for i in range(len(BACKWARD))])
def test_backward_matches_reference_path(make_cfg, rng, setting, simd, shape, opts):
    setting("simd", simd)
    c = shape[0]
    net = train_net(make_cfg, shape, dw(c, **opts), dw(c, act="leaky"), batch=3)
    x = rng.standard_normal(net.input_shape).astype(np.float32)
    r = rng.standard_normal(net.forward(x).size)
    results = {}
    for algo in ("ref", "auto"):
        setting("conv_algo", algo)
        results[algo] = analytic(net, x, r)
    (gx_ref, g_ref), (gx, g) = results["ref"], results["auto"]
    assert rel_err(gx, gx_ref) < 1e-5
    assert g.keys() == g_ref.keys()
    for k in g:
        assert rel_err(g[k], g_ref[k]) < 1e-5, k


@pytest.mark.parametrize("shape,opts", BACKWARD[:4], ids=[str(i) for i in range(4)])
def test_backward_finite_differences(make_cfg, rng, shape, opts):
    net = train_net(make_cfg, shape, dw(shape[0], **opts), batch=2)
    gradcheck(net, rng)


def test_threads_give_identical_results(make_cfg, rng):
    c = 16
    net = train_net(make_cfg, (c, 12, 11), dw(c, stride=2, batch_normalize=1, act="leaky"), dw(c), batch=4)
    x = rng.standard_normal(net.input_shape).astype(np.float32)
    r = rng.standard_normal(net.forward(x).size)
    out = []
    for threads in (1, 2):
        net._net.set_threads(threads)
        out.append((net.forward(x).copy(),) + analytic(net, x, r))
    (y1, gx1, g1), (y2, gx2, g2) = out
    assert np.array_equal(y1, y2) and np.array_equal(gx1, gx2)
    assert all(np.array_equal(g1[k], g2[k]) for k in g1)
