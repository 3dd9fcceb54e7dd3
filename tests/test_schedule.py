"""The learning-rate schedule of [net] against Darknet's formulas, burn_in included."""
import math

import pytest

import darknet_py as dn

BASE = {"width": 8, "height": 8, "channels": 3, "batch": 4, "subdivisions": 2, "learning_rate": 0.01}
CONV = ("convolutional", {"filters": 2, "size": 1})


def rate_at(make_cfg, opts, batch_num):
    net = dn.Network(make_cfg({**BASE, **opts}, CONV))
    net.seen = batch_num * BASE["batch"]
    return net.learning_rate


@pytest.mark.parametrize("b", [0, 1, 50, 99, 100, 150, 200, 1000])
def test_steps_with_burn_in(make_cfg, b):
    opts = {"policy": "steps", "steps": "100,200", "scales": ".1,.5", "burn_in": 50, "power": 4}
    if b < 50:
        want = 0.01 * (b / 50) ** 4
    else:
        want = 0.01 * (1 if b < 100 else 0.1 if b < 200 else 0.05)
    assert rate_at(make_cfg, opts, b) == pytest.approx(want, rel=1e-5, abs=1e-12)


@pytest.mark.parametrize("b", [0, 7, 10, 25])
def test_step(make_cfg, b):
    assert rate_at(make_cfg, {"policy": "step", "step": 10, "scale": .5}, b) == pytest.approx(0.01 * .5 ** (b // 10))


@pytest.mark.parametrize("b", [0, 3, 40])
def test_exp(make_cfg, b):
    assert rate_at(make_cfg, {"policy": "exp", "gamma": .9}, b) == pytest.approx(0.01 * .9 ** b, rel=1e-5)


@pytest.mark.parametrize("b", [0, 250, 999])
def test_poly(make_cfg, b):
    got = rate_at(make_cfg, {"policy": "poly", "power": 2, "max_batches": 1000}, b)
    assert got == pytest.approx(0.01 * (1 - b / 1000) ** 2, rel=1e-5)


@pytest.mark.parametrize("b", [0, 90, 100, 130])
def test_sigmoid(make_cfg, b):
    got = rate_at(make_cfg, {"policy": "sigmoid", "gamma": .1, "step": 100}, b)
    assert got == pytest.approx(0.01 / (1 + math.exp(.1 * (b - 100))), rel=1e-5)


def test_constant_and_random(make_cfg):
    assert rate_at(make_cfg, {"policy": "constant"}, 12345) == pytest.approx(0.01)
    r = rate_at(make_cfg, {"policy": "random", "power": 1}, 10)
    assert 0 <= r <= 0.01


def test_current_batch_counts_full_batches(make_cfg):
    net = dn.Network(make_cfg(BASE, CONV))
    net.seen = 4 * 37 + 3
    assert net._net.current_batch == 37
