"""The TWN quantiser against a NumPy implementation of the rule, per layer and
per filter, including the degenerate cases."""
import numpy as np
import pytest

from darknet_py import _core


def twn(w):
    w = np.asarray(w, np.float64)
    delta = 0.7 * np.mean(np.abs(w))
    sel = np.abs(w) > np.float32(delta)
    alpha = np.abs(w[sel]).mean() if sel.any() else 0.0
    return np.where(w > np.float32(delta), alpha, np.where(w < -np.float32(delta), -alpha, 0.0)), alpha


@pytest.mark.parametrize("n", [1, 2, 7, 27, 1000, 4608])
def test_per_layer_matches_numpy(rng, n):
    w = (rng.standard_normal(n) * 0.05).astype(np.float32)
    t, a = _core.ternarize(w)
    want, alpha = twn(w)
    assert a[0] == pytest.approx(alpha, rel=1e-6)
    np.testing.assert_allclose(t, want, rtol=1e-6)
    assert len(np.unique(t)) <= 3


def test_per_filter_matches_numpy(rng):
    w = (rng.standard_normal((6, 3 * 3 * 5)) * rng.random((6, 1))).astype(np.float32)
    t, a = _core.ternarize(w.ravel(), groups=6)
    for f in range(6):
        want, alpha = twn(w[f])
        assert a[f] == pytest.approx(alpha, rel=1e-6)
        np.testing.assert_allclose(t.reshape(6, -1)[f], want, rtol=1e-6)


def test_zero_and_constant_weights():
    t, a = _core.ternarize(np.zeros(9, np.float32))
    assert a[0] == 0 and np.all(t == 0)
    t, a = _core.ternarize(np.full(9, -0.25, np.float32))
    assert a[0] == pytest.approx(0.25) and np.all(t == np.float32(-0.25))


def test_idempotent_on_ternary_values(rng):
    w = (rng.standard_normal(500)).astype(np.float32)
    t1, a1 = _core.ternarize(w)
    t2, a2 = _core.ternarize(t1)
    np.testing.assert_array_equal(t1, t2)
    assert a1[0] == a2[0]


# ---- ternary conv layers: forward, straight-through backward, saving ----
import os
import struct

import darknet_py as dn

NET = {"width": 7, "height": 6, "channels": 3, "batch": 2}


def conv_ref(x, w, pad):
    """NumPy conv, stride 1: x N x C x H x W, w F x C x k x k."""
    n, c, h, wd = x.shape
    f, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - k + 1, wd + 2 * pad - k + 1
    out = np.zeros((n, f, oh, ow))
    for i in range(k):
        for j in range(k):
            out += np.einsum("ncyx,fc->nfyx", xp[:, :, i:i + oh, j:j + ow], w[:, :, i, j])
    return out


@pytest.mark.parametrize("scale", ["layer", "filter"])
def test_ternary_conv_forward_uses_twn_weights(make_cfg, rng, scale):
    cfg = make_cfg(NET, ("convolutional", {"filters": 4, "size": 3, "pad": 1, "activation": "linear",
                                           "ternary": 1, "ternary_scale": scale}))
    net = dn.Network(cfg, batch=2)
    w = net.params(0)["weights"]
    w[:] = rng.standard_normal(w.size)
    t, _ = _core.ternarize(w.copy(), groups=4 if scale == "filter" else 1)
    x = rng.random((2, 3, 6, 7), dtype=np.float32)
    want = conv_ref(x, t.reshape(4, 3, 3, 3), 1) + net.params(0)["biases"][None, :, None, None]
    np.testing.assert_allclose(net.forward(x), want, rtol=1e-4, atol=1e-4)


def test_straight_through_gradient(make_cfg, rng):
    """dL/dW is the gradient taken with the ternary weights; dL/dx goes through t."""
    cfg = make_cfg(NET, ("convolutional", {"filters": 2, "size": 3, "pad": 1, "activation": "linear", "ternary": 1}))
    net = dn.Network(cfg, batch=2, threads=1)
    w = net.params(0)["weights"]
    w[:] = rng.standard_normal(w.size)
    t = _core.ternarize(w.copy())[0].reshape(2, 3, 3, 3).astype(np.float64)
    net._net.set_train(True)
    x = rng.random((2, 3, 6, 7), dtype=np.float32)
    net.forward(x)
    R = rng.standard_normal((2, 2, 6, 7)).astype(np.float32)
    gx = net._net.backward(R)
    # analytic gradients of L = sum(R * conv(x, t)) with respect to t and x
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    gw = np.zeros((2, 3, 3, 3))
    gxp = np.zeros_like(xp)
    for i in range(3):
        for j in range(3):
            gw[:, :, i, j] = np.einsum("ncyx,nfyx->fc", xp[:, :, i:i + 6, j:j + 7], R)
            gxp[:, :, i:i + 6, j:j + 7] += np.einsum("nfyx,fc->ncyx", R, t[:, :, i, j])
    np.testing.assert_allclose(net._net.grads(0)["weights"], gw.ravel(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gx, gxp[:, :, 1:-1, 1:-1], rtol=1e-4, atol=1e-4)


def read_weights(path, net):
    raw = open(path, "rb").read()
    body = np.frombuffer(raw[20:], dtype="<f4")
    out, off = [], 0
    for i in range(len(net.layers)):
        d = {}
        for k, v in net.params(i).items():
            d[k] = body[off:off + v.size]
            off += v.size
        out.append(d)
    assert off == body.size
    return out


def test_saved_weights_are_ternary_and_backup_keeps_shadow(make_cfg, rng, tmp_path):
    cfg = make_cfg(NET,
                   ("convolutional", {"filters": 4, "size": 3, "pad": 1, "activation": "leaky", "ternary": 1,
                                      "batch_normalize": 1}),
                   ("convolutional", {"filters": 3, "size": 1, "activation": "linear"}),
                   ("convolutional", {"filters": 5, "size": 3, "pad": 1, "activation": "linear", "ternary": 1,
                                      "ternary_scale": "filter"}))
    net = dn.Network(cfg, batch=2, threads=1)
    for i in range(3):
        net.params(i)["weights"][:] = rng.standard_normal(net.params(i)["weights"].size)
    net._net.set_train(True)
    net.forward(rng.random((2, 3, 6, 7), dtype=np.float32))
    net._net.backward(rng.standard_normal((2, 5, 6, 7)).astype(np.float32))
    p = tmp_path / "t.weights"
    net.save_weights(p)
    saved = read_weights(p, net)
    assert len(np.unique(saved[0]["weights"])) <= 3
    for f in np.split(saved[2]["weights"], 5):
        assert len(np.unique(f)) <= 3
    np.testing.assert_array_equal(saved[1]["weights"], net.params(1)["weights"])  # float layer untouched
    np.testing.assert_array_equal(saved[0]["scales"], net.params(0)["scales"])
    # loading the ternary file gives the same outputs (TWN is idempotent)
    x = rng.random((1, 3, 6, 7), dtype=np.float32)
    a = dn.Network(cfg)
    a.load_weights(p)
    b = dn.Network(cfg)
    for i in range(3):
        for k, v in net.params(i).items():
            b.params(i)[k][:] = v
    np.testing.assert_allclose(a.forward(x), b.forward(x), rtol=1e-5, atol=1e-6)
