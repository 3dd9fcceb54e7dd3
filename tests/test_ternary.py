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
