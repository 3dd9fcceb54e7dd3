"""Knowledge distillation on the detector outputs (core/distill.c, the
[yolo] distill op): loss value and input gradient against a NumPy
transcription of the documented loss, finite differences of the C cost,
the teacher/student matching rules and their errors, and the trainer's
-teacher option.

Student: [maxpool] size=1 stride=2 + [yolo], so the [yolo] input is the
network input at [..., ::2, ::2] and the input gradient there is the [yolo]
delta. Teacher: a 1x1 stride-2 [convolutional] (random weights) + [yolo],
reading the same pixels; its raw [yolo] input is read back from the conv."""
import numpy as np
import pytest

import darknet_py as dn
from darknet_py.errors import DarknetError
from conftest import run_darknet

NET_W, NET_H = 16, 12
LW, LH = 8, 6
CLASSES = 2
E = 5 + CLASSES
MASK = [0, 1]
C = len(MASK) * E
ANCHORS = "2,2, 5,4, 9,8"


def yolo(**kw):
    sec = dict(mask="0,1", anchors=ANCHORS, classes=CLASSES, num=3)
    sec.update(kw)
    return ("yolo", sec)


def student(make_cfg, batch=2, **kw):
    net = dn.Network(make_cfg({"width": NET_W, "height": NET_H, "channels": C},
                              ("maxpool", dict(size=1, stride=2)), yolo(**kw)), batch=batch)
    net._net.set_train(True)
    return net


def teacher(make_cfg, batch=2, seed=5, conv=None, **kw):
    sec = dict(filters=C, size=1, stride=2, pad=0, activation="linear")
    sec.update(conv or {})
    return dn.Network(make_cfg({"width": NET_W, "height": NET_H, "channels": C}, ("convolutional", sec), yolo(**kw)),
                      batch=batch, seed=seed)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference(zs, zt, new_coords=0):
    """Loss and dL/dz_s of the documented distillation loss, float64: per
    anchor and cell the objectness term plus the other terms times the
    teacher's objectness; logistic entries (x, y, objectness, classes)
    KL(Bernoulli(t) || Bernoulli(s)), w, h (new_coords: all entries, taken
    as they come) half the squared difference."""
    shape = (zs.shape[0], len(MASK), E, LH, LW)
    zs, zt = zs.reshape(shape).astype(np.float64), zt.reshape(shape).astype(np.float64)
    logistic = (np.zeros(E, bool) if new_coords else np.array([e not in (2, 3) for e in range(E)]))[:, None, None]
    s = np.where(logistic, sigmoid(zs), zs)
    t = np.where(logistic, sigmoid(zt), zt)
    with np.errstate(invalid="ignore", divide="ignore"):  # the raw entries' KL is not used
        kl = t * np.log(t / s) + (1 - t) * np.log((1 - t) / (1 - s))
    term = np.where(logistic, kl, .5 * (s - t) ** 2)
    scale = np.repeat(t[:, :, 4:5], E, axis=2)
    scale[:, :, 4] = 1
    return (scale * term).sum(), (scale * (s - t)).reshape(zs.shape[0], C, LH, LW)


def run(net, x):
    """(cost, input gradient at the [yolo] cells) of one training forward with no truth boxes."""
    net._net.set_truth(np.zeros((x.shape[0], 1, 5), np.float32))
    net.forward(x)
    cost = float(net._net.cost)
    g = np.array(net._net.backward(None), np.float64)
    return cost, g[:, :, ::2, ::2]


def inputs(rng, n=2):
    return (rng.standard_normal((n, C, NET_H, NET_W)) * 1.5).astype(np.float32)


@pytest.mark.parametrize("opts", [{}, {"scale_x_y": 1.2}, {"new_coords": 1}])
def test_loss_and_gradient_match_numpy(make_cfg, rng, opts):
    s_net, t_net = student(make_cfg, **opts), teacher(make_cfg, **opts)
    x = inputs(rng)
    base_cost, base_g = run(s_net, x)
    weight = 0.7
    s_net.set_teacher(t_net, weight)
    cost, g = run(s_net, x)
    zt = np.array(t_net.layer_output(0), np.float64)  # the teacher's raw [yolo] input
    want_loss, want_g = reference(x[:, :, ::2, ::2], zt, new_coords=opts.get("new_coords", 0))
    assert want_loss > 1
    np.testing.assert_allclose(cost - base_cost, weight * want_loss, rtol=2e-4)
    np.testing.assert_allclose(g - base_g, weight * want_g, rtol=1e-4, atol=1e-5)


def test_gradient_is_the_derivative_of_the_cost(make_cfg, rng):
    """Central differences of the C cost's distillation part (the cost with
    the teacher minus the cost without) in the weights of a student conv,
    against the weight gradient's distillation part."""
    s_net = teacher(make_cfg, seed=3, scale_x_y=1.1)  # conv + [yolo], its own random weights
    s_net._net.set_train(True)
    t_net = teacher(make_cfg, seed=5, scale_x_y=1.05)
    x = inputs(rng)

    def distill_part():
        out = []
        for t in (t_net, None):
            s_net.set_teacher(t)
            s_net._net.zero_grads()
            cost, _ = run(s_net, x)
            out.append((cost, np.array(s_net._net.grads(0)["weights"], np.float64)))
        return out[0][0] - out[1][0], out[0][1] - out[1][1]

    _, g = distill_part()
    w = s_net.params(0)["weights"]
    h = 1e-2
    for k in rng.choice(w.size, 24, replace=False):
        costs = []
        for sign in (1, -1):
            w[k] += sign * h
            costs.append(distill_part()[0])
            w[k] -= sign * h
        fd = (costs[0] - costs[1]) / (2 * h)
        assert abs(fd - g[k]) < 5e-3 + 2e-3 * abs(fd), (k, fd, g[k])


def test_an_equal_teacher_adds_nothing(make_cfg, rng):
    s_net = student(make_cfg)
    twin = student(make_cfg)
    twin._net.set_train(False)
    x = inputs(rng)
    base_cost, base_g = run(s_net, x)
    s_net.set_teacher(twin)
    cost, g = run(s_net, x)
    assert cost == pytest.approx(base_cost, abs=1e-4)
    np.testing.assert_allclose(g, base_g, atol=1e-6)
    s_net.set_teacher(None)  # removed: the plain loss again
    assert run(s_net, x)[0] == pytest.approx(base_cost, abs=1e-6)


def test_the_teacher_follows_the_student_size(make_cfg, rng):
    """The teacher is resized to the student's batch and input size."""
    s_net, t_net = student(make_cfg, batch=3), teacher(make_cfg, batch=1)
    s_net.set_teacher(t_net)
    x = inputs(rng, 3)
    run(s_net, x)
    assert np.array(t_net.layer_output(0)).shape[0] == 3


@pytest.mark.parametrize("change, words", [
    (dict(classes=3, filters=2 * 8), "classes"),
    (dict(mask="0,1,2", filters=3 * E), "anchors per cell"),
    (dict(stride=1), "shape or stride"),
])
def test_a_teacher_that_does_not_match_is_refused(make_cfg, change, words):
    s_net = student(make_cfg)
    conv = {k: v for k, v in change.items() if k in ("filters", "stride")}
    ysec = {k: v for k, v in change.items() if k in ("classes", "mask")}
    t_net = teacher(make_cfg, conv=conv, **ysec)
    with pytest.raises(DarknetError, match=words):
        s_net.set_teacher(t_net)


def test_bad_weight_and_layers_are_refused(make_cfg):
    s_net = student(make_cfg)
    with pytest.raises(DarknetError, match="finite and >= 0"):
        s_net.set_teacher(teacher(make_cfg), -1)
    two = dn.Network(make_cfg({"width": NET_W, "height": NET_H, "channels": C},
                              ("maxpool", dict(size=1, stride=2)), yolo(), ("route", dict(layers=0)), yolo()))
    with pytest.raises(DarknetError, match="more detector layers"):
        s_net.set_teacher(two)
    with pytest.raises(DarknetError, match="fewer detector layers"):
        two.set_teacher(s_net)


# ---------------------------------------------------------------- the trainer

from test_train import synth_set, tiny_cfg  # noqa: E402,F401  (the fixture and the cfg)


def yolo_tiny(tmp_path, name, classes=2, lr=0.0):
    """test_train's tiny network with a [yolo] head instead of [region]."""
    text = open(tiny_cfg(tmp_path / f"{name}.region.cfg", classes=classes, lr=lr, max_batches=3)).read()
    head = text[:text.index("[region]")]
    path = tmp_path / f"{name}.cfg"
    path.write_text(head + f"[yolo]\nmask=0,1,2\nanchors=12,12, 30,30, 50,50\nclasses={classes}\nnum=3\n")
    return str(path)


def test_train_with_a_teacher(synth_set, tmp_path):
    """At learning rate 0 the weights stay, so the same batches give the same
    loss, plus the distillation term towards the teacher (the same weights in
    inference mode: rolling statistics, so not zero), larger with a larger
    weight; CLI and Python agree on the options; a teacher that does not
    match is an error naming the student's cfg line."""
    data = str(synth_set / "synth.data")
    cfg = yolo_tiny(tmp_path, "s")
    w = str(tmp_path / "init.weights")
    dn.Network(cfg, seed=4).save_weights(w)
    kw = dict(seed=2, threads=1, progress=False, bn_recalibrate=False, max_batches=3)
    loss = {}
    for d in (None, 1.0, 4.0):
        extra = {} if d is None else dict(teacher=w, distill=d)
        r = dn.train(data, cfg, w, backup=str(tmp_path / f"b{d}"), **kw, **extra)
        loss[d] = np.array([h["loss"] for h in r.history])
    assert np.all(loss[1.0] > loss[None] + 1e-3)
    np.testing.assert_allclose(loss[4.0] - loss[None], 4 * (loss[1.0] - loss[None]), rtol=1e-3)
    other = yolo_tiny(tmp_path, "t3", classes=3)
    w3 = str(tmp_path / "t3.weights")
    dn.Network(other).save_weights(w3)
    with pytest.raises(DarknetError, match=r"s\.cfg:\d+: \[yolo\].*classes"):
        dn.train(data, cfg, w, backup=str(tmp_path / "bad"), teacher=(other, w3), **kw)
    with pytest.raises(FileNotFoundError, match="teacher weights"):
        dn.train(data, cfg, w, teacher=str(tmp_path / "none.weights"), **kw)
    r = run_darknet("detector", "train", data, cfg, w, "-teacher", w, "-teacher_cfg", cfg, "-distill", "4",
                    "-max_batches", 3, "-seed", 2, "-nthreads", 1, "-bn_recalibrate", 0, "-backup", tmp_path / "cli")
    cli = [float(l.split(":")[1].split(",")[0]) for l in r.stdout.splitlines() if l[:2] in ("1:", "2:", "3:")]
    np.testing.assert_allclose(cli, loss[4.0], rtol=1e-4)


def test_staged_train_distils_every_ternary_run(synth_set, tmp_path):
    """staged_train(distill=...): the stages and the direct baseline train
    with the float model as teacher (their min loss includes the
    distillation term, so it differs from a run without), the float runs
    without; darknet.sh says the same."""
    data = str(synth_set / "synth.data")
    cfg = yolo_tiny(tmp_path, "st", lr=0.001)
    w = str(tmp_path / "fp.weights")
    dn.Network(cfg, seed=4).save_weights(w)
    kw = dict(plan=[[0, 1], [2]], iterations_per_stage=2, progress=False, threads=1, fp_reference=True)
    plain = dn.staged_train(data, cfg, w, out_dir=str(tmp_path / "plain"), **kw)
    dist = dn.staged_train(data, cfg, w, out_dir=str(tmp_path / "dist"), distill=3.0, **kw)
    assert [r.stage for r in dist] == ["FP", "FP fine-tuned", "M0", "M1", "no staged"]
    for a, b in zip(plain, dist):
        same = a.stage.startswith("FP")
        assert (a.min_loss == b.min_loss) == same or np.isnan(a.min_loss), (a.stage, a.min_loss, b.min_loss)
    sh = open(tmp_path / "dist" / "darknet.sh").read()
    assert sh.count(f"-teacher {w} -teacher_cfg ") == 2 and "-distill 3.0" in sh
