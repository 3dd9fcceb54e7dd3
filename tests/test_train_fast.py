"""The training forward/backward of [convolutional] on the fast kernels
(Winograd, packed GEMM, direct; DN_CONV_ALGO picks one, see csrc/layers/conv.c)
against the reference path (DN_CONV_ALGO=ref: im2col + BLAS, then separate
batch-norm and activation passes), which tests/test_grad.py checks against
finite differences: outputs, dL/dinput and every parameter gradient, on odd
shapes, with and without batch norm, fused (leaky, relu) and separate
(swish, logistic) activations, ternary weights, batch 1 and 3, 1 and 2
threads. Also the fused batch-norm + activation pass against NumPy, and the
cache of the TWN weights of ternary layers (issue #6): identical results,
writes through params() views and SGD updates noticed."""
import numpy as np
import pytest

from conftest import rel_err

dp = pytest.importorskip("darknet_py")
from darknet_py import _core  # noqa: E402

TOL = 1e-4

# (input c, h, w; layer options)
CASES = {
    "3x3-bn-leaky": ((16, 13, 11), {"filters": 24, "size": 3, "pad": 1, "batch_normalize": 1, "activation": "leaky"}),
    "3x3-bias-leaky": ((12, 9, 14), {"filters": 7, "size": 3, "pad": 1, "activation": "leaky"}),
    "3x3-bn-relu-ternary": ((16, 10, 10), {"filters": 9, "size": 3, "pad": 1, "batch_normalize": 1,
                                          "activation": "relu", "ternary": 1}),
    "3x3-bn-swish": ((9, 8, 12), {"filters": 13, "size": 3, "pad": 1, "batch_normalize": 1, "activation": "swish"}),
    "3x3-logistic": ((8, 7, 7), {"filters": 5, "size": 3, "pad": 1, "activation": "logistic"}),
    "first-layer-c3": ((3, 21, 19), {"filters": 16, "size": 3, "pad": 1, "batch_normalize": 1,
                                     "activation": "leaky"}),
    "1x1-bn": ((20, 6, 5), {"filters": 11, "size": 1, "batch_normalize": 1, "activation": "leaky"}),
    "3x3-stride2": ((10, 11, 9), {"filters": 6, "size": 3, "stride": 2, "pad": 1, "batch_normalize": 1,
                                  "activation": "leaky"}),
    "3x3-groups2": ((8, 9, 9), {"filters": 6, "size": 3, "pad": 1, "groups": 2, "activation": "leaky"}),
    "5x5-pad0": ((6, 12, 10), {"filters": 8, "size": 5, "padding": 0, "batch_normalize": 1,
                               "activation": "relie"}),
}


def build(make_cfg, rng, case, batch, threads=1):
    (c, h, w), opts = CASES[case]
    cfg = make_cfg({"width": w, "height": h, "channels": c, "batch": batch}, ("convolutional", dict(opts)))
    net = dp.Network(cfg, batch=batch, threads=threads)
    p = net.params(0)
    k = opts["size"]
    p["weights"][:] = rng.standard_normal(p["weights"].size).astype(np.float32) * np.sqrt(
        2.0 / (c // opts.get("groups", 1) * k * k))
    p["biases"][:] = rng.standard_normal(p["biases"].size).astype(np.float32) * 0.1
    if "scales" in p:
        p["scales"][:] = rng.uniform(0.5, 1.5, p["scales"].size).astype(np.float32)
    net._net.set_train(True)
    x = rng.standard_normal((batch, c, h, w)).astype(np.float32)
    return net, x


def train_pass(net, x, r):
    """(output, dL/dinput, {param: grad}) of L = sum(r * output)."""
    net._net.zero_grads()
    y = net.forward(x).copy()
    gx = net._net.backward(r.reshape(y.shape)).copy()
    return y, gx, {k: v.copy() for k, v in net._net.grads(0).items()}


@pytest.mark.parametrize("algo", ["winograd", "gemm", "direct", "auto"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_training_paths_match_reference(make_cfg, rng, setting, algo, case):
    net, x = build(make_cfg, rng, case, batch=3)
    y0 = net.forward(x)
    r = rng.standard_normal(y0.size).astype(np.float32)
    setting("conv_algo", "ref")
    ref = train_pass(net, x, r)
    setting("conv_algo", algo)
    got = train_pass(net, x, r)
    assert rel_err(got[0], ref[0]) < TOL, "output"
    assert rel_err(got[1], ref[1]) < TOL, "dL/dinput"
    assert set(got[2]) == set(ref[2])
    for k in ref[2]:
        assert rel_err(got[2][k], ref[2][k]) < TOL, k


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", ["3x3-bn-leaky", "first-layer-c3", "3x3-bias-leaky"])
def test_training_batch1_and_threads(make_cfg, rng, setting, threads, case):
    for batch in (1, 3):
        net, x = build(make_cfg, rng, case, batch=batch, threads=threads)
        r = rng.standard_normal(net.forward(x).size).astype(np.float32)
        setting("conv_algo", "ref")
        ref = train_pass(net, x, r)
        setting("conv_algo", None)
        got = train_pass(net, x, r)
        for a, b in zip(got[:2], ref[:2]):
            assert rel_err(a, b) < TOL
        for k in ref[2]:
            assert rel_err(got[2][k], ref[2][k]) < TOL, k


@pytest.mark.parametrize("act", ["leaky", "relu", "relie", "linear"])
def test_fused_batchnorm_matches_numpy(make_cfg, rng, act):
    """Training BN (batch statistics, 1/(N-1) variance) + activation, and the
    rolling statistics, against float64 NumPy; a large mean offset checks the
    one-pass variance."""
    c, h, w, batch = 5, 37, 29, 2
    cfg = make_cfg({"width": w, "height": h, "channels": c, "batch": batch},
                   ("convolutional", {"filters": c, "size": 1, "batch_normalize": 1, "activation": act}))
    net = dp.Network(cfg, batch=batch, threads=2)
    p = net.params(0)
    p["weights"][:] = np.eye(c, dtype=np.float32).ravel()
    p["scales"][:] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    p["biases"][:] = rng.standard_normal(c).astype(np.float32)
    net._net.set_train(True)
    x = (rng.standard_normal((batch, c, h, w)) * rng.uniform(0.1, 3, (1, c, 1, 1))
         + rng.uniform(-50, 50, (1, c, 1, 1))).astype(np.float32)
    y = net.forward(x)
    xd = x.astype(np.float64)
    mean = xd.mean(axis=(0, 2, 3))
    var = xd.var(axis=(0, 2, 3), ddof=1)
    z = (xd - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-6)
    z = z * p["scales"][None, :, None, None] + p["biases"][None, :, None, None]
    slope = {"leaky": 0.1, "relu": 0.0, "relie": 0.01, "linear": 1.0}[act]
    want = np.where(z > 0, z, slope * z)
    assert rel_err(y, want) < 1e-5
    # a fresh network takes the first batch's statistics whole, then momentum .01
    np.testing.assert_allclose(p["rolling_mean"], mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p["rolling_variance"], var, rtol=1e-5)
    net.forward(x * 2)
    np.testing.assert_allclose(p["rolling_mean"], 0.99 * mean + 0.01 * 2 * mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p["rolling_variance"], 0.99 * var + 0.01 * 4 * var, rtol=1e-5)


# ---------------------------------------------------------------- TWN cache (issue #6)

TCFG = {"width": 9, "height": 8, "channels": 5, "batch": 2}


def twn_forward_ref(x, w, groups):
    """NumPy forward of a linear 3x3 pad-1 ternary conv (no bias)."""
    f = w.size // (x.shape[1] * 9)
    t, _ = _core.ternarize(np.ascontiguousarray(w, np.float32), groups=groups)
    t = t.reshape(f, x.shape[1], 3, 3).astype(np.float64)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    h, wd = x.shape[2:]
    out = np.zeros((x.shape[0], f, h, wd))
    for i in range(3):
        for j in range(3):
            out += np.einsum("ncyx,fc->nfyx", xp[:, :, i:i + h, j:j + wd], t[:, :, i, j])
    return out


@pytest.mark.parametrize("algo", ["winograd", "gemm", "ref"])
@pytest.mark.parametrize("scale", ["layer", "filter"])
def test_ternary_cache_inference(make_cfg, rng, setting, algo, scale):
    setting("conv_algo", algo)
    cfg = make_cfg(TCFG, ("convolutional", {"filters": 6, "size": 3, "pad": 1, "activation": "linear",
                                            "ternary": 1, "ternary_scale": scale}))
    net = dp.Network(cfg, batch=2, threads=1)
    groups = 6 if scale == "filter" else 1
    p = net.params(0)
    p["biases"][:] = 0
    w = p["weights"]
    w[:] = rng.standard_normal(w.size)
    x = rng.standard_normal((2, 5, 8, 9)).astype(np.float32)
    y1 = net.forward(x).copy()
    assert rel_err(y1, twn_forward_ref(x, w, groups)) < TOL
    np.testing.assert_array_equal(net.forward(x), y1)  # from the cache: identical
    w[7] += 3.0                                         # one weight, in place through the view
    y2 = net.forward(x).copy()
    assert not np.array_equal(y2, y1)
    assert rel_err(y2, twn_forward_ref(x, w, groups)) < TOL
    w[:] = -w                                           # negated: same |w|, same delta
    np.testing.assert_allclose(net.forward(x), -y2, rtol=1e-5, atol=1e-5)
    # the same weights in a fresh network (no cache) give the same output
    net2 = dp.Network(cfg, batch=2, threads=1)
    for k, v in p.items():
        net2.params(0)[k][:] = v
    np.testing.assert_array_equal(net2.forward(x), net.forward(x))


REGION_CFG = """
[net]
batch=2
width=32
height=32
channels=3
momentum=0.9
decay=0.0005
learning_rate=0.05
max_batches=100
policy=constant

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
ternary=1

[maxpool]
size=2
stride=2

[convolutional]
filters=14
size=1
stride=1
activation=linear
ternary=1

[region]
anchors=1,1, 2,2
classes=2
coords=4
num=2
softmax=1
"""


def test_ternary_cache_follows_sgd_updates(make_cfg, rng, tmp_path):
    """The TWN cache is remade after each update (it bumps the params
    version): a forward after train_step uses the updated weights, exactly as
    a fresh network loaded with them (tests/test_weight_caches.py: the same
    without params() views)."""
    cfg = make_cfg(REGION_CFG)
    net = dp.Network(cfg, batch=2, threads=1, seed=3)
    net._net.set_train(True)
    x = rng.random((2, 3, 32, 32), dtype=np.float32)
    truth = np.zeros((2, 4, 5), np.float32)
    truth[:, 0] = [0.5, 0.5, 0.3, 0.4, 1]
    w_before = np.array(net.params(0)["weights"])
    y0 = net.forward(x).copy()
    for _ in range(2):
        net._net.train_step(x, truth)
    assert not np.array_equal(w_before, net.params(0)["weights"])
    y1 = net.forward(x).copy()
    assert not np.array_equal(y0, y1)
    path = str(tmp_path / "after.weights")
    net.save_weights(path)  # saves the TWN values of ternary layers: load the shadow weights instead
    fresh = dp.Network(cfg, batch=2, threads=1)
    for i in range(len(net.layers)):
        for k, v in net.params(i).items():
            fresh.params(i)[k][:] = v
    fresh._net.set_train(True)
    np.testing.assert_array_equal(fresh.forward(x), y1)
