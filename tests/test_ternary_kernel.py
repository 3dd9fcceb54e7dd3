"""The ternary inference kernels (csrc/kernels/cpu/ternary_gemm*.c).

- the integer GEMM and convolution against NumPy integer arithmetic, on odd
  shapes and every padding case, exactly; the reference (C spec), the
  portable C path, the AVX2 and the AVX-512 VNNI paths, each with the direct
  GEMM and with the integer Winograd F(4x4,3x3) (DN_TERNARY_ALGO), give
  identical integers, also at the Winograd path's channel limit;
- the int8 kernel against a NumPy model of its definition (per-image int8
  quantisation, exact integer sums, float epilogue): bit for bit;
- conv layers with BN + leaky (stride 1/2, groups, 1x1/3x3) on the float
  (add/subtract) and int8 kernels against the float path, errors reported;
- a fully ternary yolov2-tiny-voc (random weights, small input): int8
  outputs close to the float path and the same detections.

Errors are printed (pytest -s) and recorded as test properties.
"""
import os

import numpy as np
import pytest

from conftest import ROOT, VOC_ROOT, rel_err

dp = pytest.importorskip("darknet_py")
from darknet_py import _core  # noqa: E402
from darknet_py.cfgfile import write_cfg  # noqa: E402
from darknet_py.stages import conv_indices, stage_sections  # noqa: E402

SIMD = list(range(_core.ternary_simd_available() + 1))  # portable C, AVX2, VNNI: what this CPU has
TWINO_MAX_C = 3200  # DN_TWINO_MAX_C


@pytest.fixture(params=["packed", "direct", "winograd"])
def algo(request, setting):
    """The int8 kernel's algorithm: packed, the direct GEMM on im2col panels;
    direct, the direct GEMM, implicit (no im2col) where the shape allows;
    winograd for 3x3 stride-1 groups-1 layers (else direct)."""
    setting("ternary_algo", request.param)
    return request.param


def np_conv_int(x, codes, stride, pad, groups):
    """Exact integer convolution in int64: x N x C x H x W, codes F x C/g x k x k."""
    x = np.asarray(x, np.int64)
    w = np.asarray(codes, np.int64)
    n, c, h, wd = x.shape
    f, cg, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - k) // stride + 1
    ow = (wd + 2 * pad - k) // stride + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
    win = win[:, :, ::stride, ::stride][:, :, :oh, :ow]
    fg = f // groups
    return np.concatenate([np.einsum("nchwij,fcij->nfhw", win[:, g * cg:(g + 1) * cg], w[g * fg:(g + 1) * fg])
                           for g in range(groups)], axis=1)


def np_quantize(x):
    """dn_quantize_s8_ref in NumPy float32: (q, scale)."""
    x = np.asarray(x, np.float32)
    m = np.float32(np.max(np.abs(x)))
    if m < np.float32(1e-30):
        return np.zeros(x.shape, np.int8), np.float32(0)
    inv = np.float32(127) / m
    v = np.clip(x * inv, np.float32(-127), np.float32(127))
    return np.rint(v).astype(np.int8), m / np.float32(127)


def test_gemm_ref_matches_numpy(rng):
    for m, n, k in [(1, 1, 1), (7, 13, 5), (6, 16, 256), (13, 35, 259), (64, 3, 1000)]:
        a = rng.integers(-1, 2, (m, k)).astype(np.int8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        np.testing.assert_array_equal(_core.testing.tgemm_ref(a, b), a.astype(np.int64) @ b.astype(np.int64))


# (batch, c, h, w, filters, size, stride, pad, groups): odd maps, filters that
# are not multiples of the 6-row tile, pixel counts that are not multiples of
# 16, k not a multiple of 4 and above one 256-tap block, every pad from 0 to
# size-1, strides 1-3, groups.
CONV_CASES = [
    (1, 1, 1, 1, 1, 1, 1, 0, 1),
    (1, 3, 17, 19, 16, 3, 1, 1, 1),
    (2, 5, 9, 7, 7, 3, 1, 0, 1),
    (1, 4, 8, 8, 5, 3, 1, 2, 1),
    (1, 8, 13, 13, 13, 3, 2, 1, 1),
    (1, 6, 11, 10, 9, 2, 2, 0, 1),
    (1, 6, 11, 10, 9, 2, 1, 1, 3),
    (2, 12, 7, 9, 8, 1, 1, 0, 4),
    (1, 10, 6, 6, 4, 5, 1, 2, 2),
    (1, 7, 12, 5, 11, 5, 3, 4, 1),
    (1, 40, 9, 9, 14, 3, 1, 1, 1),     # k = 360: two tap blocks
    (1, 130, 5, 6, 12, 3, 1, 1, 1),    # k = 1170: five tap blocks
    (1, 300, 3, 3, 6, 1, 1, 0, 1),     # 1x1, k = 300
    (1, 64, 23, 29, 20, 3, 1, 1, 2),
    # Winograd shapes: odd channel counts (a pair half empty), one channel,
    # edge tiles cut by the map (h, w not multiples of 4), tile panels across
    # image rows and images, filters past the 6-row blocks, pad 0 and 2
    (2, 33, 13, 11, 13, 3, 1, 1, 1),
    (1, 1, 5, 9, 3, 3, 1, 0, 1),
    (3, 7, 4, 4, 7, 3, 1, 2, 1),
    (1, 64, 26, 26, 40, 3, 1, 1, 1),
    # implicit GEMM shapes (stride 1, groups 1, out_w a multiple of 16 or
    # 1x1 pad 0): several images, a half-empty 4-channel plane, tap blocks,
    # pad 0, 5x5, pixel counts that are not multiples of 16
    (2, 16, 5, 32, 13, 3, 1, 1, 1),
    (1, 7, 6, 16, 9, 3, 1, 1, 1),
    (1, 300, 4, 16, 7, 3, 1, 1, 1),
    (1, 8, 6, 18, 5, 3, 1, 0, 1),
    (1, 4, 5, 16, 3, 5, 1, 2, 1),
    (2, 9, 7, 5, 10, 1, 1, 0, 1),
    # depthwise (channels = groups = filters; depthwise.c's int8 kernel
    # unless DN_TERNARY_ALGO=packed): strides 1-3, pads 0-2, sizes 2-5
    (2, 8, 9, 11, 8, 3, 1, 1, 8),
    (1, 6, 13, 12, 6, 3, 2, 1, 6),
    (1, 5, 7, 7, 5, 5, 2, 2, 5),
    (1, 4, 6, 9, 4, 2, 3, 0, 4),
    (2, 33, 40, 38, 33, 3, 1, 1, 33),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c)))
def test_integer_conv_exact(rng, case, algo):
    b, c, h, w, f, size, stride, pad, groups = case
    x = rng.integers(-128, 128, (b, c, h, w)).astype(np.int8)
    x.flat[0] = -128
    codes = rng.integers(-1, 2, (f, c // groups, size, size)).astype(np.int8)
    want = np_conv_int(x, codes, stride, pad, groups)
    np.testing.assert_array_equal(_core.testing.tconv_s32(x, codes, stride, pad, groups, ref=True), want)
    for simd in SIMD:
        for threads in (1, 2):
            got = _core.testing.tconv_s32(x, codes, stride, pad, groups, simd=simd, threads=threads)
            np.testing.assert_array_equal(got, want, err_msg=f"simd={simd} threads={threads}")


def test_integer_conv_extremes(rng, algo):
    """All +1 codes on x = -128 / +127 everywhere: the largest sums the int16
    accumulation meets (64 steps of 2 x 255 after the +128 offset)."""
    for v in (-128, 127):
        x = np.full((1, 300, 6, 6), v, np.int8)
        for code in (1, -1):
            codes = np.full((7, 300, 3, 3), code, np.int8)
            want = np_conv_int(x, codes, 1, 1, 1)
            for simd in SIMD:
                np.testing.assert_array_equal(_core.testing.tconv_s32(x, codes, 1, 1, 1, simd=simd), want)


def test_winograd_channel_limit(rng, algo):
    """At DN_TWINO_MAX_C channels the Winograd sums reach 576 * 128 * 9 * c,
    just below 2^31 (its intermediate sums wrap modulo 2^32 and must still
    come out exact); one channel more runs the direct GEMM."""
    for c in (TWINO_MAX_C, TWINO_MAX_C + 1):
        x = np.full((1, c, 5, 6), -128, np.int8)
        x[0, ::3, 1, 2] = 127
        codes = np.ones((7, c, 3, 3), np.int8)
        codes[5:, ::2] = -1
        want = np_conv_int(x, codes, 1, 1, 1)
        for simd in SIMD:
            np.testing.assert_array_equal(_core.testing.tconv_s32(x, codes, 1, 1, 1, simd=simd), want, err_msg=f"c={c}")


def test_winograd_superblocks_and_chunks(rng, setting):
    """Maps with more tiles than one super-block of V holds (512 KiB: 16
    tiles at 256 channels, 224 at 32) and, at 32 channels, super-blocks of
    more panels than one GEMM chunk (64 tiles)."""
    setting("ternary_algo", "winograd")
    for c in (32, 256):
        x = rng.integers(-128, 128, (1, c, 62, 61)).astype(np.int8)
        codes = rng.integers(-1, 2, (8, c, 3, 3)).astype(np.int8)
        want = np_conv_int(x, codes, 1, 1, 1)
        for simd in SIMD:
            for threads in (1, 2):
                got = _core.testing.tconv_s32(x, codes, 1, 1, 1, simd=simd, threads=threads)
                np.testing.assert_array_equal(got, want, err_msg=f"c={c} simd={simd} threads={threads}")


def test_algorithm_choice(setting):
    """The rule: Winograd for 3x3 stride-1 groups-1 layers of 32 to
    DN_TWINO_MAX_C channels on maps whose 4x4 tiles (run in groups of 4)
    save enough products; DN_TERNARY_ALGO overrides it where Winograd applies at all."""
    setting("ternary_algo", None)
    algo = _core.testing.ternary_algo
    assert algo(1, 1024, 13, 13, 1024, 3, 1, 1, 1) == "winograd"
    assert algo(1, 64, 52, 52, 128, 3, 1, 1, 1) == "winograd"
    assert algo(1, 16, 208, 208, 32, 3, 1, 1, 1) == "implicit"  # few channels: direct, no im2col
    assert algo(1, 3, 208, 208, 32, 3, 1, 1, 1) == "direct"     # 9 k-groups instead of 7 packed
    assert algo(1, 16, 52, 52, 32, 3, 1, 1, 1) == "direct"      # panels across rows
    assert algo(1, 256, 13, 13, 255, 1, 1, 0, 1) == "implicit"  # 1x1 pad 0: rows are contiguous
    assert algo(1, 256, 5, 5, 64, 3, 1, 1, 1) == "direct"       # 4 tiles of 16 outputs for 25
    assert algo(1, 256, 6, 10, 64, 3, 1, 1, 1) == "direct"      # 6 tiles, run as 8
    assert algo(2, 256, 6, 10, 64, 3, 1, 1, 1) == "winograd"    # the batch fills the runs of 4
    assert algo(1, 256, 26, 26, 64, 3, 2, 1, 1) == "direct"     # stride 2
    assert algo(1, 256, 26, 26, 64, 3, 1, 1, 2) == "direct"     # groups
    assert algo(1, TWINO_MAX_C + 1, 13, 13, 8, 3, 1, 1, 1) == "direct"
    setting("ternary_algo", "winograd")
    assert algo(1, 3, 13, 13, 8, 3, 1, 1, 1) == "winograd"
    assert algo(1, 256, 26, 26, 64, 1, 1, 0, 1) == "implicit"   # 1x1: never Winograd
    setting("ternary_algo", "direct")
    assert algo(1, 1024, 13, 13, 1024, 3, 1, 1, 1) == "direct"
    setting("ternary_algo", "packed")
    assert algo(1, 16, 208, 208, 32, 3, 1, 1, 1) == "direct"


@pytest.mark.parametrize("act", ["leaky", "relu"])
def test_winograd_whole_network_identical(tmp_path, setting, act):
    """A ternary network with int8 kernels: the Winograd and the direct
    algorithm give bit-identical outputs (same integers, same epilogue; relu
    gives +0, not -0, on both; a fused 2x2 maxpool after the second layer)."""
    cfg = tmp_path / "w.cfg"
    lines = ["[net]", "width=52", "height=44", "channels=3", "batch=2", ""]
    for i, (f, bn) in enumerate(((32, 1), (48, 1), (64, 0), (33, 1))):
        lines += ["[convolutional]", f"batch_normalize={bn}", f"filters={f}", "size=3", "stride=1", "pad=1",
                  f"activation={act}", "ternary=1", ""]
        if i == 1:
            lines += ["[maxpool]", "size=2", "stride=2", ""]
    cfg.write_text("\n".join(lines))
    x = np.random.default_rng(3).standard_normal((2, 3, 44, 52)).astype(np.float32)
    outs = {}
    for a in ("direct", "winograd"):
        setting("ternary_algo", a)
        net = dp.Network(str(cfg), ternary_kernel="int8", batch=2)
        outs[a] = net.forward(x).copy()
    np.testing.assert_array_equal(outs["winograd"].view(np.uint32), outs["direct"].view(np.uint32))
    assert np.abs(outs["direct"]).max() > 0
    if act == "relu":
        assert (outs["direct"] == 0).any()


def test_bad_codes_rejected(rng):
    x = np.zeros((1, 2, 4, 4), np.int8)
    with pytest.raises(ValueError):
        _core.testing.tconv_s32(x, np.full((1, 2, 3, 3), 2, np.int8))


def test_quantizer_matches_numpy(rng):
    for x in [rng.standard_normal(1000).astype(np.float32) * 3,
              np.array([0.5, -0.5, 1.5 / 127, 2.5 / 127, -1.0], np.float32),
              np.zeros(5, np.float32), np.full(3, 1e-38, np.float32)]:
        q, s = _core.testing.quantize_s8_ref(x)
        wq, ws = np_quantize(x)
        np.testing.assert_array_equal(q, wq)
        assert np.float32(s) == ws


@pytest.mark.parametrize("case", [(2, 16, 13, 11, 24, 3, 1, 1, 1, "leaky"), (1, 40, 9, 9, 14, 3, 2, 1, 1, "linear"),
                                  (2, 35, 10, 13, 9, 3, 1, 1, 1, "relu"),
                                  (1, 24, 7, 9, 30, 1, 1, 0, 3, "relu"), (2, 300, 5, 5, 7, 3, 1, 1, 1, "leaky"),
                                  (1, 3, 93, 99, 5, 3, 1, 1, 1, "leaky"),  # planes quantised row by row
                                  (2, 16, 13, 11, 16, 3, 2, 1, 16, "leaky"),  # depthwise
                                  (1, 24, 10, 10, 24, 3, 1, 1, 24, "relu")],
                         ids=lambda c: "x".join(map(str, c)))
def test_int8_kernel_is_its_definition(rng, case, algo):
    """Float input -> per-image int8 codes -> exact integer sums -> float32
    epilogue y = act(acc * (sx * scale[f]) + shift[f]): equal bit for bit to
    the same steps in NumPy, on the portable and the AVX2 path."""
    b, c, h, w, f, size, stride, pad, groups, act = case
    x = (rng.standard_normal((b, c, h, w)) * rng.uniform(0.1, 5, (b, 1, 1, 1))).astype(np.float32)
    codes = rng.integers(-1, 2, (f, c // groups, size, size)).astype(np.int8)
    scale = rng.uniform(0.01, 0.2, f).astype(np.float32)
    shift = rng.standard_normal(f).astype(np.float32)
    want = []
    for i in range(b):
        q, sx = np_quantize(x[i])
        acc = np_conv_int(q[None], codes, stride, pad, groups)[0]
        y = acc.astype(np.float32) * (sx * scale)[:, None, None] + shift[:, None, None]
        if act == "leaky":
            y = np.where(y > 0, y, np.float32(0.1) * y)
        elif act == "relu":
            y = np.where(y > 0, y, np.float32(0))
        want.append(y)
    want = np.stack(want)
    for simd in SIMD:
        for threads in (1, 2):
            got, sx = _core.testing.tconv_int8(x, codes, scale, shift, act, stride, pad, groups, simd=simd, threads=threads)
            np.testing.assert_array_equal(got, want, err_msg=f"simd={simd} threads={threads}")
            np.testing.assert_array_equal(sx, [np_quantize(x[i])[1] for i in range(b)])


@pytest.mark.parametrize("case", [(2, 16, 26, 26, 24, 1, 1, "leaky"), (1, 40, 30, 22, 14, 1, 1, "linear"),
                                  (1, 3, 64, 80, 16, 1, 1, "leaky"), (2, 64, 52, 52, 20, 1, 1, "relu"),
                                  (1, 8, 18, 36, 7, 1, 0, "leaky"), (1, 300, 10, 10, 9, 1, 1, "leaky"),
                                  (1, 16, 20, 20, 8, 2, 1, "leaky")],
                         ids=lambda c: "x".join(map(str, c)))
def test_int8_kernel_pooled(rng, case, algo):
    """pool=2 (the fused 2x2 stride-2 max pool) is exactly the pool of the
    unpooled output: pixel blocks of whole row pairs, Winograd tiles pooled
    in place (edge tiles of 2 rows or columns), tap blocks, threads. The
    kernel pools the integer sums before the epilogue (the max, or the min
    where the filter's scale is negative), with and without a shift."""
    b, c, h, w, f, stride, pad, act = case
    x = (rng.standard_normal((b, c, h, w)) * 2).astype(np.float32)
    codes = rng.integers(-1, 2, (f, c, 3, 3)).astype(np.int8)
    scale = (rng.uniform(0.01, 0.2, f) * rng.choice([-1, 1], f)).astype(np.float32)
    scale[:2] = [-0.05, 0]
    shift = rng.standard_normal(f).astype(np.float32) if act != "linear" else None
    for simd in SIMD:
        for threads in (1, 2):
            y, sx = _core.testing.tconv_int8(x, codes, scale, shift, act, stride, pad, simd=simd, threads=threads)
            n, k, oh, ow = y.shape
            want = y.reshape(n, k, oh // 2, 2, ow // 2, 2).max(axis=(3, 5))
            got, sx2 = _core.testing.tconv_int8(x, codes, scale, shift, act, stride, pad, simd=simd, threads=threads, pool=2)
            np.testing.assert_array_equal(got, want, err_msg=f"simd={simd} threads={threads}")
            np.testing.assert_array_equal(sx2, sx)


def test_int8_kernel_pool_needs_even_output(rng):
    x = rng.standard_normal((1, 4, 7, 8)).astype(np.float32)
    codes = np.ones((2, 4, 3, 3), np.int8)
    with pytest.raises(ValueError, match="even"):
        _core.testing.tconv_int8(x, codes, np.ones(2, np.float32), pad=1, pool=2)
    with pytest.raises(ValueError, match="pool"):
        _core.testing.tconv_int8(x, codes, np.ones(2, np.float32), pad=1, pool=3)


# ---- conv layers through the network, against the float path ----

LAYER_CASES = [
    # c, h, w, filters, size, stride, groups, ternary_scale
    (16, 26, 26, 32, 3, 1, 1, "layer"),
    (32, 21, 19, 24, 3, 2, 1, "layer"),
    (64, 13, 13, 40, 1, 1, 1, "filter"),
    (24, 15, 17, 30, 3, 1, 3, "layer"),
    (48, 12, 12, 48, 3, 2, 4, "filter"),
    (3, 40, 36, 16, 3, 1, 1, "layer"),
    (512, 7, 7, 20, 3, 1, 1, "layer"),
]


def build_layer(make_cfg, rng, c, h, w, filters, size, stride, groups, tscale, batch=1):
    opts = {"batch_normalize": 1, "filters": filters, "size": size, "stride": stride, "pad": 1,
            "groups": groups, "ternary": 1, "ternary_scale": tscale, "activation": "leaky"}
    net = dp.Network(make_cfg({"width": w, "height": h, "channels": c, "batch": batch},
                              ("convolutional", opts)), batch=batch)
    p = net.params(0)
    p["weights"][:] = rng.standard_normal(p["weights"].size) * np.sqrt(2.0 / (c // groups * size * size))
    p["biases"][:] = rng.standard_normal(filters) * 0.1
    p["scales"][:] = rng.uniform(0.5, 1.5, filters)
    p["rolling_mean"][:] = rng.standard_normal(filters) * 0.1
    p["rolling_variance"][:] = rng.uniform(0.5, 1.5, filters)
    x = rng.standard_normal((batch, c, h, w)).astype(np.float32)
    return net, x


@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda c: "x".join(map(str, c)))
def test_layer_kernels_vs_float_path(make_cfg, rng, record_property, setting, case):
    net, x = build_layer(make_cfg, rng, *case, batch=2)
    net.ternary_kernel = "off"
    want = net.forward(x).copy()
    errs = {}
    for kernel, tol in (("float", 2e-5), ("int8", 3e-2)):
        net.ternary_kernel = kernel
        got = net.forward(x).copy()
        errs[kernel] = rel_err(got, want)
        assert errs[kernel] < tol, f"{kernel}: relative error {errs[kernel]:.2e}"
        setting("simd", "0")  # the portable path: the same floats
        np.testing.assert_array_equal(net.forward(x), got)
        setting("simd", None)
    record_property("rel_err_float", errs["float"])
    record_property("rel_err_int8", errs["int8"])
    print(f"\n{case}: relative error vs float path: float kernel {errs['float']:.2e}, int8 {errs['int8']:.2e}")


def test_batch_images_are_independent(make_cfg, rng):
    """int8 scales are per image: an image's output does not depend on the
    others in the batch."""
    net, x = build_layer(make_cfg, rng, 16, 12, 12, 8, 3, 1, 1, "layer", batch=3)
    net.ternary_kernel = "int8"
    x[1] *= 50
    both = net.forward(x).copy()
    single = dp.Network(net.cfg, batch=1)
    for k, v in net.params(0).items():
        single.params(0)[k][:] = v
    single.ternary_kernel = "int8"
    for i in range(3):
        np.testing.assert_array_equal(single.forward(x[i:i + 1])[0], both[i])


def test_weight_changes_rebuild_the_codes(make_cfg, rng):
    net, x = build_layer(make_cfg, rng, 16, 10, 10, 8, 3, 1, 1, "layer")
    for kernel in ("float", "int8"):
        net.ternary_kernel = kernel
        before = net.forward(x).copy()
        w = net.params(0)["weights"]
        w[:] = -w  # through the view: every code flips
        net.ternary_kernel = "off"
        want = net.forward(x).copy()
        net.ternary_kernel = kernel
        after = net.forward(x)
        assert not np.allclose(after, before)
        assert rel_err(after, want) < 3e-2
        w[:] = -w


def test_kernel_setting(make_cfg, rng, tmp_path):
    net, x = build_layer(make_cfg, rng, 8, 6, 6, 4, 3, 1, 1, "layer")
    assert net.ternary_kernel == "off"
    for k in ("float", "int8", "off"):
        net.ternary_kernel = k
        assert net.ternary_kernel == k
    with pytest.raises(ValueError):
        net.ternary_kernel = "int4"
    path = tmp_path / "w.weights"
    net.save_weights(path)
    n2 = dp.Network(net.cfg, path, ternary_kernel="int8")
    assert n2.ternary_kernel == "int8"
    # training always runs the float path
    n2._net.set_train(True)
    net._net.set_train(True)
    np.testing.assert_array_equal(n2.forward(x), net.forward(x))


def pool2(y):
    n, c, h, w = y.shape
    return y.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


@pytest.mark.parametrize("threads", [1, 2])
def test_conv_maxpool_fused_in_the_network(make_cfg, rng, algo, threads):
    """Inference on the int8 kernel: a ternary conv whose output only its
    2x2/2 maxpool reads writes the pooled output directly. The maxpool's
    output is the pool of the conv's; the conv's output, asked for after
    the forward, is computed then and equals the conv run on its own; a
    conv that a route reads is not fused."""
    bn = {"batch_normalize": 1, "ternary": 1, "size": 3, "stride": 1, "pad": 1, "activation": "leaky"}
    cfg = make_cfg({"width": 40, "height": 48, "channels": 3, "batch": 2},
                   ("convolutional", dict(bn, filters=16)), ("maxpool", {"size": 2, "stride": 2}),
                   ("convolutional", dict(bn, filters=40)), ("maxpool", {"size": 2, "stride": 2, "padding": 0}),
                   ("convolutional", dict(bn, filters=24)), ("maxpool", {"size": 2, "stride": 2}),
                   ("convolutional", {"filters": 10, "size": 1, "activation": "linear"}),
                   ("route", {"layers": 4}))
    net = dp.Network(cfg, batch=2, seed=5, threads=threads, ternary_kernel="int8")
    for i in (0, 2, 4):  # BN statistics away from their init values
        p = net.params(i)
        p["rolling_mean"][:] = rng.standard_normal(p["rolling_mean"].size) * 0.1
        p["rolling_variance"][:] = rng.uniform(0.5, 1.5, p["rolling_variance"].size)
    x = rng.standard_normal((2, 3, 48, 40)).astype(np.float32)
    for _ in range(2):
        y = net.forward(x).copy()
        ms = [layer["forward_ms"] for layer in net.layers]
        assert ms[1] == ms[3] == 0 and min(ms[0], ms[2], ms[4], ms[5]) > 0  # fused pairs count at the conv
        pooled = [net.layer_output(i).copy() for i in (1, 3, 5)]
        for k, i in enumerate((0, 2, 4)):
            conv = net.layer_output(i)
            np.testing.assert_array_equal(pooled[k], pool2(conv), err_msg=f"layer {i + 1}")
            alone = dp.Network(make_cfg({"width": net.layers[i]["input_shape"][2],
                                         "height": net.layers[i]["input_shape"][1],
                                         "channels": net.layers[i]["input_shape"][0], "batch": 2},
                                        ("convolutional", dict(bn, filters=conv.shape[1]))),
                               batch=2, threads=threads, ternary_kernel="int8")
            for key, v in net.params(i).items():
                alone.params(0)[key][:] = v
            inp = x if i == 0 else net.layer_output(i - 1)
            np.testing.assert_array_equal(alone.forward(inp), conv, err_msg=f"layer {i}")
        np.testing.assert_array_equal(y, net.layer_output(4))


# ---- a whole ternarised yolov2-tiny-voc ----

def tiny_ternary_cfg(tmp_path, size):
    src = os.path.join(ROOT, "cfg", "yolov2-tiny-voc.cfg")
    secs = stage_sections(src, range(len(conv_indices(stage_sections(src, [])))))
    secs[0].set("width", size)
    secs[0].set("height", size)
    secs[0].set("batch", 1)
    secs[0].set("subdivisions", 1)
    path = str(tmp_path / "yolov2-tiny-voc-ternary.cfg")
    write_cfg(secs, path)
    return path


def sample_image():
    jpg = os.path.join(VOC_ROOT, "VOCdevkit", "VOC2007", "JPEGImages", "000009.jpg")
    if os.path.exists(jpg):
        return _core.load_image(jpg)
    from darknet_py.synth import make_image
    return make_image(5, 224, np.random.default_rng(3))[0]


def test_ternary_yolov2_tiny_int8_vs_float(tmp_path, record_property):
    size = 160
    cfg = tiny_ternary_cfg(tmp_path, size)
    net = dp.Network(cfg, seed=7)
    layers = net.layers
    assert all(l["ternary"] for l in layers if l["type"] == "convolutional")
    last = max(i for i, l in enumerate(layers) if l["type"] == "convolutional")
    img = sample_image()

    # Make the last (1x1, 125 = 5 x (5 + 20)) conv fire on a few cells: the
    # objectness of anchor 0 is a random +-1 direction over the 1024 features,
    # cut between the k-th and (k+1)-th best cells (2 <= k <= 5) where the
    # gap is largest;
    # all its other filters are 0 (bias only), class 11 wins the softmax.
    net.detect(img)
    feat = net.layer_output(last - 1)[0].reshape(1024, -1).astype(np.float64)
    v = np.random.default_rng(11).choice([-1.0, 1.0], 1024)
    s = np.sort(v @ feat)[::-1]
    k = int(np.argmax(s[1:5] - s[2:6])) + 2
    gap, mid = s[k - 1] - s[k], (s[k - 1] + s[k]) / 2
    a = np.float32(16.0 / gap)
    p = net.params(last)
    w = np.zeros((125, 1024), np.float32)
    w[4] = a * v
    p["weights"][:] = w.ravel()
    b = np.full(125, -10.0, np.float32)
    b[4] = -a * mid
    b[:25][5:] = 0
    b[5 + 11] = 8
    for anchor in range(5):
        b[anchor * 25:anchor * 25 + 4] = 0
    p["biases"][:] = b

    dets = {}
    outs = {}
    for kernel in ("off", "int8", "float"):
        net.ternary_kernel = kernel
        dets[kernel] = net.detect(img, thresh=0.25)
        outs[kernel] = (net.layer_output(last - 1).copy(), net.layer_output(last).copy())
    err_feat = rel_err(outs["int8"][0], outs["off"][0])
    err_out = rel_err(outs["int8"][1], outs["off"][1])
    err_float = rel_err(outs["float"][1], outs["off"][1])
    record_property("rel_err_int8_features", err_feat)
    record_property("rel_err_int8_output", err_out)
    record_property("rel_err_float_output", err_float)
    print(f"\nternary yolov2-tiny-voc {size}x{size}: int8 vs float path, relative error "
          f"features {err_feat:.3e}, detector input {err_out:.3e}; float kernel {err_float:.2e}; "
          f"detections {len(dets['off'])} / {len(dets['int8'])} (k = {k})")
    assert err_feat < 0.1 and err_out < 0.1
    assert err_float < 1e-4
    assert 2 <= len(dets["off"]) <= k and all(d.class_id == 11 for d in dets["off"])
    m = dp.ternary.match_detections(dets["off"], dets["int8"])
    assert m == len(dets["off"]) == len(dets["int8"])
    assert dp.ternary.match_detections(dets["off"], dets["float"]) == len(dets["off"]) == len(dets["float"])

    # the same through darknet_py.ternary.compare
    wpath = tmp_path / "t.weights"
    net.save_weights(wpath)
    r = dp.ternary.compare(cfg, wpath, [img], kernel="int8")
    assert r["agreement"] == 1.0 and r["matched"] == len(dets["off"]) and r["max_rel_diff"] < 0.1
