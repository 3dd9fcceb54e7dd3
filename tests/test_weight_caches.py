"""The caches derived from conv weights (the Winograd filters of conv.c, the
TWN values of conv_train.c, the ternary codes and int8 panels / float tap
lists of conv_ternary.c) against fresh networks, which have no cache yet:
after load_weights (.weights, packed, a partial load), after writes through
Network.params() views (also views handed out after the caches were made),
and after train steps.

The caches are remade when net->params_version changes (the library bumps
it after writing the params: dn_params_changed) and, once params() views
are out, when the weights' content hash changes. So the networks under test below stay
without views where the version alone must do the work: params() is only
called on them after the outputs being checked were computed.
"""
import numpy as np
import pytest

dp = pytest.importorskip("darknet_py")
from darknet_py import ternary  # noqa: E402

KERNELS = ("off", "float", "int8")

# ternary 3x3 (Winograd on the TWN values with kernel off), float 3x3 (the
# float Winograd cache), ternary 1x1 with one alpha per filter, ternary 3x3
CONVS = [
    {"batch_normalize": 1, "filters": 16, "size": 3, "pad": 1, "activation": "leaky", "ternary": 1},
    {"batch_normalize": 1, "filters": 16, "size": 3, "pad": 1, "activation": "leaky"},
    {"batch_normalize": 1, "filters": 12, "size": 1, "activation": "leaky", "ternary": 1,
     "ternary_scale": "filter"},
    {"filters": 8, "size": 3, "pad": 1, "activation": "linear", "ternary": 1},
]


@pytest.fixture(params=["winograd", "gemm"])
def algo(request, setting):
    setting("conv_algo", request.param)
    return request.param


def small_cfg(make_cfg, batch=1):
    return make_cfg({"width": 16, "height": 16, "channels": 8, "batch": batch},
                    *[("convolutional", dict(c)) for c in CONVS])


def outputs(net, x):
    """{kernel: output} on every ternary kernel, in turn."""
    out = {}
    for k in KERNELS:
        net.ternary_kernel = k
        out[k] = net.forward(x).copy()
    net.ternary_kernel = "off"
    return out


def assert_same(got, want):
    for k in KERNELS:
        np.testing.assert_array_equal(got[k], want[k], err_msg=f"kernel {k}")


def assert_changed(got, before):
    for k in KERNELS:
        assert not np.array_equal(got[k], before[k]), f"kernel {k}: output unchanged"


def weight_files(cfg, tmp_path):
    """Two random weight sets A and B (.weights) and A packed."""
    pa, pb, pk = (str(tmp_path / n) for n in ("a.weights", "b.weights", "a.tpk"))
    dp.Network(cfg, seed=1).save_weights(pa)
    dp.Network(cfg, seed=2).save_weights(pb)
    ternary.pack(cfg, pa, pk)
    return pa, pb, pk


def test_load_weights_reaches_every_cache(make_cfg, rng, tmp_path, algo):
    cfg = small_cfg(make_cfg)
    pa, pb, pk = weight_files(cfg, tmp_path)
    x = rng.random((1, 8, 16, 16), dtype=np.float32)
    net = dp.Network(cfg, pa, threads=1)
    first = outputs(net, x)  # every cache made from A
    assert_same(outputs(net, x), first)  # and used again

    net.load_weights(pb)
    got = outputs(net, x)
    assert_changed(got, first)
    assert_same(got, outputs(dp.Network(cfg, pb, threads=1), x))

    net.load_weights(pk)  # the packed file of A: the same values as A's .weights
    again = outputs(net, x)
    assert_changed(again, got)
    assert_same(again, first)

    net.load_weights(pb, upto=2)  # the first two layers from B, the others stay A
    part = outputs(net, x)
    assert_changed(part, again)
    ref = dp.Network(cfg, pk, threads=1)
    ref.load_weights(pb, upto=2)
    assert_same(part, outputs(ref, x))


def copy_of(net, cfg, batch=1):
    """A fresh network (no caches) with net's params."""
    ref = dp.Network(cfg, batch=batch, threads=1)
    for i in range(len(net.layers)):
        for k, v in net.params(i).items():
            ref.params(i)[k][:] = v
    return ref


def test_writes_through_views_are_noticed(make_cfg, rng, tmp_path, algo):
    cfg = small_cfg(make_cfg)
    pa, pb, _ = weight_files(cfg, tmp_path)
    x = rng.random((1, 8, 16, 16), dtype=np.float32)
    net = dp.Network(cfg, pa, threads=1)
    first = outputs(net, x)  # caches made before any view was handed out
    views = [net.params(i)["weights"] for i in range(len(CONVS))]
    views[0][:] = -views[0]  # every code flips, the same |w|
    views[1][3] += 1.0       # one float weight
    views[2][: views[2].size // 2] *= 2.0
    views[3][:] = rng.standard_normal(views[3].size).astype(np.float32)
    got = outputs(net, x)
    assert_changed(got, first)
    assert_same(got, outputs(copy_of(net, cfg), x))

    # with the views still out, a load and then writes through the old views
    net.load_weights(pb)
    loaded = outputs(net, x)
    assert_same(loaded, outputs(dp.Network(cfg, pb, threads=1), x))
    for v in views:
        v[:] = v[::-1].copy()
    got = outputs(net, x)
    assert_changed(got, loaded)
    assert_same(got, outputs(copy_of(net, cfg), x))


REGION_CFG = """
[net]
batch=2
width=16
height=16
channels=8
momentum=0.9
decay=0.0005
learning_rate=0.05
max_batches=100
policy=constant
""" + "".join("\n[convolutional]\n" + "".join(f"{k}={v}\n" for k, v in c.items()) for c in CONVS[:3]) + """
[convolutional]
filters=14
size=1
activation=linear
ternary=1

[region]
anchors=1,1, 2,2
classes=2
coords=4
num=2
softmax=1
"""


def test_train_steps_reach_every_cache(make_cfg, rng, algo):
    """Inference forwards on every kernel between train steps, and a training
    forward at the end, give what a fresh network with the trained params
    gives (the float shadow weights: save_weights would write their TWN
    values)."""
    cfg = make_cfg(REGION_CFG)
    net = dp.Network(cfg, batch=2, threads=1, seed=3)
    x = rng.random((2, 8, 16, 16), dtype=np.float32)
    truth = np.zeros((2, 4, 5), np.float32)
    truth[:, 0] = [0.5, 0.5, 0.3, 0.4, 1]
    seen = [outputs(net, x)]
    for _ in range(3):
        net._net.set_train(True)
        net._net.train_step(x, truth)
        net._net.set_train(False)
        seen.append(outputs(net, x))
        assert_changed(seen[-1], seen[-2])
    net._net.set_train(True)
    net._net.train_step(x, truth)
    y_train = net.forward(x).copy()  # training mode, right after the update
    net._net.set_train(False)
    last = outputs(net, x)
    assert_changed(last, seen[-1])

    ref = copy_of(net, cfg, batch=2)  # views on net only now
    assert_same(last, outputs(ref, x))
    ref._net.set_train(True)  # training forward: batch statistics, the same weights
    np.testing.assert_array_equal(ref.forward(x), y_train)
