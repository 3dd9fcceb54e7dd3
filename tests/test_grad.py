"""Backward passes in training mode against central finite differences.

For a network and a random R of the output's shape, L = sum(R * y). The
analytic gradients come from one backward(R) (dL/dinput, and every
trainable param's grad); each is compared with (L(v + e) - L(v - e)) / 2e on
a random subset of coordinates, the loss summed in float64 over float32
forward calls. Shapes are small and deliberately odd. Non-smooth points
(leaky/relu kinks, maxpool near-ties) can fall inside +-e: a coordinate
that fails is retried with e/4 and e/32, and excused only when those
differences disagree with each other (the function is not smooth there), a
few per tensor at most.
Also: Darknet's training batch norm and dropout conventions, and a few SGD
steps reducing a small regression loss.
"""
import numpy as np
import pytest

import darknet_py

EPS = 1e-2
RTOL = 1e-2
ATOL = 2e-3      # relative to the largest analytic gradient of the tensor
NCOORDS = 12

ACTS = ["linear", "leaky", "logistic", "relu", "relie", "ramp", "tanh", "swish", "mish"]


# ---------------------------------------------------------------- helpers

def train_net(make_cfg, shape, *sections, batch=2, seed=0):
    """A network in training mode over a c x h x w input (one thread: the
    shapes are tiny and the checks run thousands of forwards)."""
    c, h, w = shape
    path = make_cfg({"width": w, "height": h, "channels": c}, *sections)
    net = darknet_py.Network(path, batch=batch, seed=seed, threads=1)
    net._net.set_train(True)
    return net


def conv(filters, size=3, stride=1, act="linear", **opts):
    o = {"filters": filters, "size": size, "stride": stride, "pad": 1, "activation": act}
    o.update(opts)
    return ("convolutional", o)


def loss(net, x, r):
    return float(np.dot(net.forward(x).astype(np.float64).ravel(), r))


def analytic(net, x, r):
    """(dL/dx, {(layer, name): dL/dparam}) from one backward."""
    y = net.forward(x)
    net._net.zero_grads()
    gx = net._net.backward(r.reshape(y.shape).astype(np.float32)).astype(np.float64)
    grads = {}
    for i in range(len(net.layers)):
        for name, g in net._net.grads(i).items():
            grads[(i, name)] = g.astype(np.float64).copy()
    return gx, grads


def central(f, flat, j, eps):
    """Central difference of f in flat[j] (a float32 view), with the
    perturbations actually stored in float32."""
    old = flat[j]
    flat[j] = old + np.float32(eps)
    up, hp = f(), float(flat[j])
    flat[j] = old - np.float32(eps)
    down, hm = f(), float(flat[j])
    flat[j] = old
    return (up - down) / (hp - hm)


def check_tensor(f, values, an, what, rng, n=NCOORDS, eps=EPS):
    flat, an = values.reshape(-1), an.reshape(-1)
    assert flat.size == an.size, what
    assert np.all(np.isfinite(an)), what
    atol = ATOL * max(float(np.max(np.abs(an))), 1e-3) + 1e-5
    idx = rng.choice(flat.size, size=min(n, flat.size), replace=False)

    def close(fd, a):
        return abs(fd - a) <= RTOL * max(abs(fd), abs(a)) + atol

    excused, bad = 0, []
    for j in idx:
        fds = []
        for e in (eps, eps / 4, eps / 32):
            fds.append(central(f, flat, j, e))
            if close(fds[-1], an[j]):
                break
        else:
            if all(close(fds[0], fd) for fd in fds[1:]):
                bad.append((int(j), fds, float(an[j])))
            else:
                excused += 1
    assert not bad, f"{what}: (index, fd at e, e/4, e/32, analytic) {bad}"
    assert excused <= max(1, len(idx) // 4), f"{what}: {excused} of {len(idx)} coordinates not smooth"


def gradcheck(net, rng, n=NCOORDS, eps=EPS, expect=None):
    """Check dL/dx and every trainable param's grad of net in training mode.
    expect: optional {layer: set of param names that must have grads}."""
    b, c, h, w = net.input_shape
    x = rng.standard_normal((b, c, h, w)).astype(np.float32)
    y = net.forward(x)
    r = rng.standard_normal(y.size)
    gx, grads = analytic(net, x, r)
    f = lambda: loss(net, x, r)
    check_tensor(f, x, gx, "input", rng, n, eps)
    for (i, name), g in grads.items():
        check_tensor(f, net.params(i)[name], g, f"layer {i} {name}", rng, n, eps)
    if expect:
        for i, names in expect.items():
            assert {k for (j, k) in grads if j == i} == set(names), (i, grads.keys())
    return grads


# ---------------------------------------------------------------- conv

@pytest.mark.parametrize("act", ACTS)
def test_conv_activations(make_cfg, rng, act):
    net = train_net(make_cfg, (2, 5, 4), conv(3, act=act))
    gradcheck(net, rng, expect={0: {"biases", "weights"}})


@pytest.mark.parametrize("act", ["linear", "leaky", "logistic", "tanh", "swish", "mish"])
def test_conv_batchnorm(make_cfg, rng, act):
    net = train_net(make_cfg, (3, 5, 6), conv(4, act=act, batch_normalize=1), batch=3)
    gradcheck(net, rng, expect={0: {"biases", "scales", "weights"}})


GEOMETRY = [
    # (input c, h, w), conv options
    ((3, 4, 5), dict(filters=4, size=1, stride=1, pad=0)),           # direct 1x1 path
    ((3, 5, 5), dict(filters=2, size=1, stride=2, pad=0)),           # 1x1 through im2col
    ((2, 7, 6), dict(filters=3, size=3, stride=2, pad=1)),
    ((2, 6, 5), dict(filters=3, size=3, stride=1, pad=0)),
    ((2, 4, 5), dict(filters=2, size=3, stride=1, pad=0, padding=2)),
    ((2, 5, 4), dict(filters=3, size=2, stride=1, pad=1)),           # even size, padding 1
    ((1, 8, 7), dict(filters=2, size=5, stride=3, pad=0, padding=1)),
    ((4, 5, 4), dict(filters=6, size=3, stride=1, pad=1, groups=2)),
    ((4, 3, 5), dict(filters=2, size=1, stride=1, pad=0, groups=2)),  # grouped direct path
    ((6, 7, 5), dict(filters=3, size=3, stride=2, pad=1, groups=3, batch_normalize=1)),
]


@pytest.mark.parametrize("shape,opts", GEOMETRY, ids=[str(i) for i in range(len(GEOMETRY))])
def test_conv_geometry(make_cfg, rng, shape, opts):
    o = {"activation": "linear"}
    o.update(opts)
    net = train_net(make_cfg, shape, ("convolutional", o), batch=2)
    gradcheck(net, rng)


def test_conv_chain(make_cfg, rng):
    net = train_net(make_cfg, (3, 7, 6), conv(4, act="leaky", batch_normalize=1),
                    conv(3, size=3, stride=2, act="mish"), conv(2, size=1, act="logistic", pad=0))
    gradcheck(net, rng)


def test_conv_batchnorm_forward_matches_darknet(make_cfg, rng):
    """Training BN: batch statistics, variance with 1/(N-1), eps 1e-6,
    rolling = .99 rolling + .01 batch (the first batch of a fresh network sets
    them); rolling stats have no grad."""
    net = train_net(make_cfg, (3, 4, 5), conv(2, size=1, pad=0, batch_normalize=1), batch=3)
    p = net.params(0)
    p["scales"][:] = [1.5, -0.5]
    p["biases"][:] = [0.25, 1.0]
    x = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)
    net.forward(x)  # fresh network: rolling statistics = this batch's
    z0 = np.einsum("fc,bchw->bfhw", p["weights"].reshape(2, 3).astype(np.float64), x.astype(np.float64))
    np.testing.assert_allclose(p["rolling_mean"], z0.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p["rolling_variance"], z0.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)
    p["rolling_mean"][:] = [0.1, -0.2]
    p["rolling_variance"][:] = [2.0, 0.5]
    y = net.forward(x).astype(np.float64)
    w = p["weights"].reshape(2, 3).astype(np.float64)
    z = np.einsum("fc,bchw->bfhw", w, x.astype(np.float64))
    mean = z.mean(axis=(0, 2, 3))
    var = z.var(axis=(0, 2, 3), ddof=1)
    ref = (z - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-6)
    ref = ref * np.array([1.5, -0.5])[:, None, None] + np.array([0.25, 1.0])[:, None, None]
    assert np.max(np.abs(y - ref)) < 1e-4
    np.testing.assert_allclose(p["rolling_mean"], 0.99 * np.array([0.1, -0.2]) + 0.01 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p["rolling_variance"], 0.99 * np.array([2.0, 0.5]) + 0.01 * var, rtol=1e-5)
    assert set(net._net.grads(0)) == {"biases", "scales", "weights"}


def test_grads_accumulate(make_cfg, rng):
    """backward adds into the grads; zero_grads clears them."""
    net = train_net(make_cfg, (2, 4, 4), conv(3, act="tanh", batch_normalize=1), conv(2, act="swish"))
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    y = net.forward(x)
    r = rng.standard_normal(y.shape).astype(np.float32)
    net._net.zero_grads()
    gx1 = net._net.backward(r)
    g1 = {k: v.copy() for k, v in net._net.grads(0).items()}
    gx2 = net._net.backward(r)
    np.testing.assert_allclose(gx1, gx2, rtol=1e-6, atol=1e-7)
    for k, v in net._net.grads(0).items():
        np.testing.assert_allclose(v, 2 * g1[k], rtol=1e-5, atol=1e-6)
    net._net.zero_grads()
    assert all(not np.any(v) for v in net._net.grads(0).values())


# ---------------------------------------------------------------- pooling

@pytest.mark.parametrize("opts", [
    {"size": 2, "stride": 1}, {"size": 2, "stride": 2}, {"size": 3, "stride": 1},
    {"size": 3, "stride": 2}, {"size": 3, "stride": 2, "padding": 0},
])
def test_maxpool(make_cfg, rng, opts):
    net = train_net(make_cfg, (2, 5, 7), ("maxpool", opts))
    gradcheck(net, rng)
    net = train_net(make_cfg, (2, 7, 5), conv(3, act="tanh"), ("maxpool", opts), conv(2, size=1, pad=0))
    gradcheck(net, rng)


def test_avgpool(make_cfg, rng):
    gradcheck(train_net(make_cfg, (3, 3, 5), ("avgpool", {})), rng)
    gradcheck(train_net(make_cfg, (2, 5, 4), conv(3, act="logistic"), ("avgpool", {}),
                        ("connected", {"output": 2, "activation": "linear"})), rng)


# ---------------------------------------------------------------- route, reorg, shortcut, upsample

def test_route_two_inputs(make_cfg, rng):
    net = train_net(make_cfg, (2, 5, 4), conv(4, act="tanh"), conv(3, act="logistic"),
                    ("route", {"layers": "-1,-2"}), conv(2, size=1, pad=0))
    gradcheck(net, rng)


def test_route_groups(make_cfg, rng):
    net = train_net(make_cfg, (2, 4, 5), conv(4, act="tanh"),
                    ("route", {"layers": -1, "groups": 2, "group_id": 1}), conv(3))
    gradcheck(net, rng)


def test_route_absolute_and_shared_output(make_cfg, rng):
    """Layer 0 feeds both layer 1 and the route: its delta sums both."""
    net = train_net(make_cfg, (2, 5, 5), conv(2, act="tanh"), ("maxpool", {"size": 2, "stride": 1}),
                    conv(3, act="logistic"), ("route", {"layers": "0, 2"}))
    gradcheck(net, rng)


@pytest.mark.parametrize("reverse", [0, 1])
def test_reorg(make_cfg, rng, reverse):
    net = train_net(make_cfg, (3, 4, 6), conv(8, act="tanh"), ("reorg", {"stride": 2, "reverse": reverse}),
                    conv(3, size=1, pad=0))
    gradcheck(net, rng)


def test_reorg_first(make_cfg, rng):
    gradcheck(train_net(make_cfg, (4, 4, 6), ("reorg", {"stride": 2})), rng)
    gradcheck(train_net(make_cfg, (8, 3, 2), ("reorg", {"stride": 2, "reverse": 1})), rng)


@pytest.mark.parametrize("opts", [
    {}, {"alpha": 0.5, "beta": 2.0, "activation": "tanh"}, {"alpha": -1.5, "beta": 0.75, "activation": "swish"},
])
def test_shortcut_same_shape(make_cfg, rng, opts):
    o = {"from": -2}
    o.update(opts)
    net = train_net(make_cfg, (2, 5, 4), conv(3, act="tanh"), conv(3, act="logistic"), ("shortcut", o))
    gradcheck(net, rng)


def test_shortcut_from_larger(make_cfg, rng):
    """from is 6x6x4, input 3x3x3: stride 2, only 3 channels overlap."""
    net = train_net(make_cfg, (2, 6, 6), conv(4, act="tanh"), conv(3, stride=2, act="logistic"),
                    ("shortcut", {"from": -2, "alpha": 0.5, "beta": 1.5, "activation": "mish"}))
    gradcheck(net, rng)


def test_shortcut_from_smaller(make_cfg, rng):
    """from is 3x3x3, input 6x6x5: sample 2, non-overlapping cells pass through."""
    net = train_net(make_cfg, (2, 6, 6), conv(3, stride=2, act="tanh"), ("upsample", {"stride": 2}),
                    conv(5, act="logistic"), ("shortcut", {"from": -3, "alpha": 0.5, "beta": -2.0}))
    gradcheck(net, rng)


@pytest.mark.parametrize("opts,shape", [
    ({"stride": 2}, (2, 3, 4)), ({"stride": 3, "scale": 0.5}, (2, 2, 3)), ({"stride": -2}, (2, 4, 6)),
])
def test_upsample(make_cfg, rng, opts, shape):
    gradcheck(train_net(make_cfg, shape, ("upsample", opts)), rng)
    gradcheck(train_net(make_cfg, shape, conv(3, act="tanh"), ("upsample", opts), conv(2)), rng)


# ---------------------------------------------------------------- connected, softmax, dropout

@pytest.mark.parametrize("bn,act", [(0, "linear"), (0, "logistic"), (1, "linear"), (1, "mish"), (1, "leaky")])
def test_connected(make_cfg, rng, bn, act):
    net = train_net(make_cfg, (3, 2, 3), ("connected", {"output": 5, "activation": act, "batch_normalize": bn}),
                    batch=4)
    names = {"biases", "weights"} | ({"scales"} if bn else set())
    gradcheck(net, rng, expect={0: names})


def test_connected_after_conv(make_cfg, rng):
    net = train_net(make_cfg, (2, 4, 3), conv(3, act="tanh", batch_normalize=1),
                    ("connected", {"output": 4, "activation": "tanh", "batch_normalize": 1}),
                    ("connected", {"output": 3, "activation": "linear"}), batch=3)
    gradcheck(net, rng)


def test_connected_batchnorm_batch_of_one(make_cfg, rng):
    """N = 1: the batch variance is 0, the output is the bias, grads finite."""
    net = train_net(make_cfg, (2, 1, 3), ("connected", {"output": 2, "activation": "linear", "batch_normalize": 1}),
                    batch=1)
    x = rng.standard_normal((1, 2, 1, 3)).astype(np.float32)
    y = net.forward(x)
    np.testing.assert_allclose(y.ravel(), net.params(0)["biases"], atol=1e-6)
    gx, grads = analytic(net, x, np.ones(y.size))
    assert np.all(np.isfinite(gx)) and all(np.all(np.isfinite(g)) for g in grads.values())


@pytest.mark.parametrize("opts", [{}, {"groups": 3}, {"groups": 2, "temperature": 2.5}, {"temperature": 0.5}])
def test_softmax(make_cfg, rng, opts):
    gradcheck(train_net(make_cfg, (3, 2, 2), conv(3, act="linear"), ("softmax", opts)), rng)


def test_softmax_first(make_cfg, rng):
    gradcheck(train_net(make_cfg, (5, 1, 2), ("softmax", {"groups": 2, "temperature": 1.5})), rng)


def test_dropout_probability_zero(make_cfg, rng):
    net = train_net(make_cfg, (2, 4, 5), conv(3, act="tanh"), ("dropout", {"probability": 0}), conv(2))
    gradcheck(net, rng)


def test_dropout_mask_and_scaling(make_cfg, rng):
    """Training: each value is dropped with probability p or scaled by
    1/(1-p); backward applies the same mask; a new mask every forward;
    inference stays the identity."""
    p = 0.3
    net = train_net(make_cfg, (3, 20, 20), ("dropout", {"probability": p}), batch=2)
    x = (rng.uniform(0.5, 1.5, (2, 3, 20, 20)) * rng.choice([-1, 1], (2, 3, 20, 20))).astype(np.float32)
    y = net.forward(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
    assert abs(1 - kept.mean() - p) < 0.05
    r = rng.standard_normal(y.shape).astype(np.float32)
    gx = net._net.backward(r)
    np.testing.assert_allclose(gx, np.where(kept, r / (1 - p), 0), rtol=1e-6)
    y2 = net.forward(x)
    assert np.any((y2 != 0) != kept)
    net._net.set_train(False)
    np.testing.assert_array_equal(net.forward(x), x)


def test_dropout_behind_conv(make_cfg, rng):
    """The conv before a dropout sees the masked, scaled delta."""
    p = 0.5
    net = train_net(make_cfg, (2, 4, 4), conv(3, act="linear"), ("dropout", {"probability": p}), batch=2)
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    y = net.forward(x)
    c = net.layer_output(0)
    mask = np.where(y != 0, 1 / (1 - p), 0.0)
    np.testing.assert_allclose(y, c * mask, rtol=1e-5, atol=1e-6)
    r = rng.standard_normal(y.shape).astype(np.float32)
    net._net.zero_grads()
    net._net.backward(r)
    np.testing.assert_allclose(net._net.grads(0)["biases"], (r * mask).sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- learning

def test_sgd_reduces_regression_loss(make_cfg, rng):
    """Plain SGD over the analytic grads fits a random linear target."""
    net = train_net(make_cfg, (3, 6, 5), conv(8, act="leaky", batch_normalize=1), conv(2, size=1, pad=0),
                    batch=4, seed=3)
    x = rng.standard_normal((4, 3, 6, 5)).astype(np.float32)
    a = rng.standard_normal((2, 3))
    target = np.einsum("oc,bchw->bohw", a, x)

    def step(lr):
        y = net.forward(x).astype(np.float64)
        diff = y - target
        net._net.zero_grads()
        net._net.backward((diff / diff.size).astype(np.float32))
        for i in range(len(net.layers)):
            params = net.params(i)
            for name, g in net._net.grads(i).items():
                params[name] -= lr * g
        return 0.5 * float(np.mean(diff ** 2))

    losses = [step(0.5) for _ in range(40)]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.2 * losses[0], losses
