"""Batch-norm recalibration (dn_network_bn_recalibrate, the trainer's end-of-run
re-estimation): the rolling statistics become the population statistics of
the images, from the sub-batch means m_k and (Darknet's unbiased) variances
v_k as var = mean(v_k) + mean(m_k^2) - mean(m_k)^2, against NumPy; and
[dropout] is a copy while recalibrating (the statistics inference sees),
so a network with dropout gets the same statistics as without it."""
import numpy as np

import darknet_py as dn

C_IN, C_OUT, H, W = 3, 4, 6, 5


def conv_bn(extra=()):
    return [("convolutional", dict(filters=C_OUT, size=1, stride=1, pad=0, batch_normalize=1, activation="linear")),
            *extra,
            ("convolutional", dict(filters=2, size=1, stride=1, pad=0, batch_normalize=1, activation="linear"))]


def recalibrated(make_cfg, images, batch, extra=()):
    net = dn.Network(make_cfg({"width": W, "height": H, "channels": C_IN, "batch": batch}, *conv_bn(extra)),
                     batch=batch, seed=7)
    net._net.bn_recalibrate(images)
    return net


def test_population_statistics_match_numpy(make_cfg, rng):
    images = rng.standard_normal((8, C_IN, H, W)).astype(np.float32) * 2 + 1
    net = recalibrated(make_cfg, images, batch=2)
    p = net.params(0)
    wts = np.array(p["weights"], np.float64).reshape(C_OUT, C_IN)
    z = np.einsum("oc,nchw->nohw", wts, images.astype(np.float64))  # pre-BN (no bias with batch_normalize)
    subs = z.reshape(4, 2, C_OUT, H, W)
    m = subs.mean(axis=(1, 3, 4))                    # per sub-batch and channel
    v = subs.var(axis=(1, 3, 4), ddof=1)             # Darknet's batch variance divides by n - 1
    want_var = v.mean(0) + (m ** 2).mean(0) - m.mean(0) ** 2
    np.testing.assert_allclose(p["rolling_mean"], m.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p["rolling_variance"], want_var, rtol=1e-4, atol=1e-6)


def test_dropout_is_a_copy_while_recalibrating(make_cfg, rng):
    images = rng.standard_normal((6, C_IN, H, W)).astype(np.float32)
    plain = recalibrated(make_cfg, images, batch=3)
    dropped = recalibrated(make_cfg, images, batch=3, extra=[("dropout", dict(probability=.5))])
    for k in ("rolling_mean", "rolling_variance"):
        np.testing.assert_allclose(dropped.params(2)[k], plain.params(1)[k], rtol=1e-6, atol=1e-7)
