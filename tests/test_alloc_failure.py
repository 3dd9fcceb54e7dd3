"""An allocation that fails inside a forward or a training step (the conv
layers' weight caches, scratch and training state) is a DarknetError
saying "out of memory", or (a float kernel's scratch) the reference path
with the same results, never other outputs or a crash (a ternary layer
never falls back from the int8 kernel to the float path); afterwards the same network works
again. The n-th allocation of the core's checked allocator is made to fail
(_core.testing.fail_allocation, DARKNET_TEST_HOOKS builds) for every n up
to past the number of allocations one forward (or training step) makes."""
import numpy as np
import pytest

import darknet_py as dp
from darknet_py import DarknetError, _core

testing = getattr(_core, "testing", None)
pytestmark = pytest.mark.skipif(testing is None, reason="a build without DARKNET_TEST_HOOKS")

CFG = """
[net]
width=20
height=20
channels=3
batch=2

[convolutional]
filters=8
size=3
stride=1
pad=1
batch_normalize=1
activation=leaky

[convolutional]
filters=8
groups=8
size=3
stride=2
pad=1
batch_normalize=1
ternary=1
ternary_scale=filter
activation=leaky

[convolutional]
filters=12
size=1
stride=1
pad=1
batch_normalize=1
ternary=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=6
size=3
stride=1
pad=1
ternary=1
activation=linear
"""


@pytest.fixture
def model(tmp_path):
    cfg = tmp_path / "m.cfg"
    cfg.write_text(CFG)
    net = dp.Network(str(cfg), batch=2, seed=3)
    w = tmp_path / "m.weights"
    net.save_weights(w)
    return str(cfg), str(w)


def outputs(net, x, train):
    if not train:
        return [net.forward(x).copy()]
    y = net.forward(x)
    net._net.zero_grads()
    gx = net._net.backward(np.ones_like(y))
    return [y.copy(), gx.copy()] + [g.copy() for i in range(len(net.layers)) for g in net._net.grads(i).values()]


def fresh(cfg, w, kernel, train):
    net = dp.Network(cfg, w, batch=2)
    net.ternary_kernel = kernel
    if train:
        net._net.set_train(True)
    return net


@pytest.mark.parametrize("kernel,train", [("off", False), ("int8", False), ("off", True)])
def test_failed_allocations(model, kernel, train):
    cfg, w = model
    x = np.random.default_rng(0).random((2, 3, 20, 20), dtype=np.float32)
    want = outputs(fresh(cfg, w, kernel, train), x, train)
    errors = 0
    try:
        for n in range(60):
            net = fresh(cfg, w, kernel, train)
            testing.fail_allocation(n)
            try:
                got = outputs(net, x, train)
            except DarknetError as e:
                assert "out of memory" in str(e), str(e)
                errors += 1
            else:  # the failure hit a float fast path's scratch: the reference path gives the same results
                assert all(np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(got, want)), n
            testing.fail_allocation(-1)
            after = outputs(net, x, train)  # the same network works again
            assert all(np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(after, want)), n
    finally:
        testing.fail_allocation(-1)
    assert errors >= 1  # the ternary weights or the training state could not be allocated: an error
