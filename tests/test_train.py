"""Training end to end: overfitting a few images, the C training loop with its
checkpoints (atomic, resumable after SIGKILL, min-loss weights), the Python
train() API, and a short regression run on the real VOC subset."""
import os
import random
import signal
import subprocess
import struct
import sys
import time

import numpy as np
import pytest

import darknet_py as dn
from darknet_py import _core, synth, voc
from conftest import DARKNET_BIN, ROOT, VOC_ROOT

TINY = """[net]
batch={batch}
subdivisions={subdivisions}
width={size}
height={size}
channels=3
momentum=0.9
decay=0.0005
learning_rate={lr}
burn_in={burn_in}
max_batches={max_batches}
policy=steps
steps={s1},{s2}
scales=.1,.1
hue=.05
saturation=1.2
exposure=1.2

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=32
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=32
size=3
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters={filters}
activation=linear

[region]
anchors=1.5,1.5, 3,3, 5,5
bias_match=1
classes={classes}
coords=4
num=3
softmax=1
jitter=.1
rescore={rescore}
object_scale=5
noobject_scale=1
class_scale=1
coord_scale=1
absolute=1
thresh=.6
random={random}
"""


def tiny_cfg(path, classes=2, size=96, batch=4, subdivisions=1, lr=0.01, burn_in=0, max_batches=100,
             random=0, rescore=1):
    path.write_text(TINY.format(classes=classes, size=size, batch=batch, subdivisions=subdivisions, lr=lr,
                                burn_in=burn_in, max_batches=max_batches, s1=int(max_batches * .8),
                                s2=int(max_batches * .9), filters=3 * (classes + 5), random=random,
                                rescore=rescore))
    return str(path)


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    info = synth.make_synthetic_voc(str(out), images=24, classes=2, size=96, seed=1, split=0.75,
                                    min_objects=1, max_objects=2, progress=False)
    voc.convert(info["devkit"], str(out), classes=info["names"], data_name="synth.data", progress=False)
    return out


def test_overfit_four_images_then_detect(synth_set, tmp_path):
    # Darknet's region loss needs its burn-in: without it the no-object term
    # drives every objectness into the logistic's flat tail within a few steps.
    cfg = tiny_cfg(tmp_path / "t.cfg", batch=4, lr=0.001, burn_in=100)
    lst = tmp_path / "four.txt"
    lst.write_text("\n".join(open(synth_set / "train.txt").read().split()[:4]) + "\n")
    net = dn.Network(cfg, batch=4, threads=2)
    net._net.set_train(True)
    ld = _core.Loader(str(lst), batch=4, classes=2, max_boxes=30, augment=False, seed=0)
    images, truth = ld.next(96, 96)
    losses = [net._net.train_step(images, truth) for _ in range(400)]
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.1 * first, (first, last)
    net._net.bn_recalibrate(images)  # the running BN averages lag the fast-moving weights
    net._net.set_train(False)
    net.resize(96, 96, batch=4)
    net.forward(images)
    for b in range(4):
        boxes, obj, probs = net._net.detections(b, 96, 96, 0.1, False, True, 0.45)
        want = truth[b][truth[b, :, 2] > 0]
        for t in want:  # every object found with the right class
            ious = [_iou(t[:4], bx) for bx in boxes]
            k = int(np.argmax(ious)) if ious else -1
            assert k >= 0 and ious[k] > 0.5 and obj[k] > 0.1, (b, t, ious)
            assert np.argmax(probs[k]) == int(t[4]), (b, t, probs[k])


def _iou(a, b):
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    iw, ih = max(0, min(ax1, bx1) - max(ax0, bx0)), max(0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_python_train_writes_checkpoints_and_history(synth_set, tmp_path):
    cfg = tiny_cfg(tmp_path / "p.cfg", batch=4, subdivisions=2, max_batches=120, random=1)
    seen_cb = []
    r = dn.train(synth_set / "synth.data", cfg, backup=tmp_path / "bk", seed=3, progress=False,
                 callback=lambda it, s: seen_cb.append(it))
    assert r.iterations == 120 and not r.interrupted and seen_cb == list(range(1, 121))
    for p in (r.final, r.minloss, r.backup, str(tmp_path / "bk" / "p_100.weights")):
        assert os.path.exists(p), p
    assert np.mean(r.losses[-10:]) < np.mean(r.losses[:10])
    assert r.min_loss == pytest.approx(min(h["avg_loss"] for h in r.history))
    assert {h["width"] for h in r.history} != {96}  # random=1 changes the input size
    net = dn.Network(cfg, r.final)
    assert net.seen == 120 * 4
    # stopping from the callback writes a checkpoint and reports it
    r2 = dn.train(synth_set / "synth.data", cfg, backup=tmp_path / "bk2", seed=3, progress=False,
                  callback=lambda it, s: it >= 7)
    assert r2.interrupted and r2.iterations == 7 and dn.Network(cfg, r2.backup).seen == 7 * 4
    # same seed, same run
    r3 = dn.train(synth_set / "synth.data", cfg, backup=tmp_path / "bk3", seed=3, progress=False,
                  max_batches=7)
    assert [h["loss"] for h in r3.history] == pytest.approx([h["loss"] for h in r2.history[:7]], rel=1e-5)


def test_ternary_training_keeps_the_min_loss_float_weights(synth_set, tmp_path):
    """With ternary layers, <cfg>.minloss.weights holds their TWN values and
    <cfg>.minloss.backup the same min-loss weights with the float shadow
    weights (what a next stage trains on from); without, no .minloss.backup."""
    cfg = tiny_cfg(tmp_path / "t.cfg", batch=4, lr=0.001, burn_in=2, max_batches=12)
    r = dn.train(synth_set / "synth.data", cfg, backup=tmp_path / "f", seed=1, progress=False)
    assert r.minloss_backup is None and not any(p.suffix == ".backup" and "minloss" in p.name
                                                for p in (tmp_path / "f").iterdir())
    text = open(cfg).read().replace("[convolutional]\nbatch_normalize=1", "[convolutional]\nternary=1\nbatch_normalize=1")
    open(cfg, "w").write(text)
    r = dn.train(synth_set / "synth.data", cfg, backup=tmp_path / "t", seed=1, progress=False)
    assert r.minloss_backup == str(tmp_path / "t" / "t.minloss.backup") and os.path.exists(r.minloss_backup)
    ternary, shadow = dn.Network(cfg, r.minloss), dn.Network(cfg, r.minloss_backup)
    assert ternary.seen == shadow.seen > 0
    nt = 0
    for i, l in enumerate(ternary.layers):
        if l["type"] != "convolutional":
            continue
        pt, ps = ternary.params(i), shadow.params(i)
        for k in pt:
            if k != "weights":
                np.testing.assert_array_equal(pt[k], ps[k])
        if "ternary=1" in text and len(np.unique(pt["weights"])) <= 3 < len(np.unique(ps["weights"])):
            t, _ = _core.ternarize(ps["weights"].ravel(), 1)
            np.testing.assert_array_equal(t, pt["weights"].ravel())
            nt += 1
    assert nt == text.count("ternary=1")


def test_sigkill_leaves_good_checkpoint_and_resume_continues(synth_set, tmp_path):
    if not os.path.exists(DARKNET_BIN):
        pytest.skip("./darknet not built")
    cfg = tiny_cfg(tmp_path / "k.cfg", batch=2, max_batches=100000)
    bk = tmp_path / "bk"
    proc = subprocess.Popen([DARKNET_BIN, "detector", "train", str(synth_set / "synth.data"), cfg,
                             "-backup", str(bk), "-nthreads", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    backup = bk / "k.backup"
    deadline = time.time() + 120
    while time.time() < deadline and not backup.exists():
        time.sleep(0.2)
    time.sleep(0.7)  # kill at an arbitrary later moment
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert backup.exists()
    seen = struct.unpack("<iiiQ", open(backup, "rb").read(20))[3]
    assert seen % 2 == 0 and seen >= 200
    net = dn.Network(cfg, backup)  # loads strictly: not truncated
    assert net.seen == seen
    # resume: the first iteration continues from seen / batch
    r = subprocess.run([DARKNET_BIN, "detector", "train", str(synth_set / "synth.data"),
                        cfg.replace("k.cfg", "k.cfg"), str(backup), "-backup", str(bk), "-nthreads", "1",
                        "-max_batches", str(seen // 2 + 3)], capture_output=True, text=True, timeout=120)
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"{seen // 2 + 1}: "), first


def test_sigkill_at_20_random_moments_of_training(synth_set, tmp_path):
    """Training (32x32, so checkpoints come every fraction of a second) is
    killed 20 times, each time after a random number of iterations (10-130)
    plus a random fraction of one, each run resuming from the last .backup;
    after every kill each checkpoint in the backup folder loads strictly and
    the run goes on from it."""
    if not os.path.exists(DARKNET_BIN):
        pytest.skip("./darknet not built")
    cfg = tiny_cfg(tmp_path / "r.cfg", size=32, batch=2, max_batches=100000)
    bk = tmp_path / "bk"
    backup = bk / "r.backup"
    rnd = random.Random(5)
    seen_before, checked = 0, 0
    for k in range(20):
        resume = [str(backup)] if backup.exists() else []
        proc = subprocess.Popen([DARKNET_BIN, "detector", "train", str(synth_set / "synth.data"), cfg, *resume,
                                 "-backup", str(bk), "-nthreads", "1"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        for _ in range(rnd.randint(10, 130)):
            assert proc.stdout.readline()
        time.sleep(rnd.uniform(0, 0.02))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        for f in os.listdir(bk) if bk.exists() else []:
            if f.endswith((".weights", ".backup")):
                net = dn.Network(cfg, bk / f)  # strict: neither truncated nor oversize
                assert net.seen % 2 == 0
                checked += 1
        if backup.exists():
            seen = dn.Network(cfg, backup).seen
            assert seen >= seen_before  # a resumed run never goes back
            seen_before = seen
    assert seen_before >= 200 and checked >= 20
    # a killed writer's temp file is removed by the next write of the same
    # file: at most one is left per file
    temps = [f.split(".tmp")[0] for f in os.listdir(bk) if ".tmp" in f]
    assert len(temps) == len(set(temps)), temps


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_checkpoint_and_exits_cleanly(synth_set, tmp_path, sig):
    if not os.path.exists(DARKNET_BIN):
        pytest.skip("./darknet not built")
    cfg = tiny_cfg(tmp_path / "s.cfg", batch=2, max_batches=100000)
    proc = subprocess.Popen([DARKNET_BIN, "detector", "train", str(synth_set / "synth.data"), cfg,
                             "-backup", str(tmp_path / "bk"), "-nthreads", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # first iteration done
    assert line.startswith("1: ")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    backup = tmp_path / "bk" / "s.backup"
    assert backup.exists() and dn.Network(cfg, backup).seen >= 2


def test_python_train_stops_on_sigterm_after_a_checkpoint(synth_set, tmp_path):
    cfg = tiny_cfg(tmp_path / "t.cfg", batch=2, max_batches=100000)
    script = (f"import darknet_py as dn\n"
              f"def cb(i, s):\n    print(i, flush=True)\n"
              f"r = dn.train({str(synth_set / 'synth.data')!r}, {cfg!r}, backup={str(tmp_path / 'bk')!r}, "
              f"threads=1, progress=False, callback=cb)\n"
              f"print('interrupted', r.interrupted, r.iterations, flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "1"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    last = out.split("\n")[-2].split()
    assert last[:2] == ["interrupted", "True"] and int(last[2]) >= 1
    assert dn.Network(cfg, tmp_path / "bk" / "t.backup").seen >= 2


def test_bad_data_file_errors(tmp_path):
    cfg = tiny_cfg(tmp_path / "e.cfg")
    data = tmp_path / "x.data"
    data.write_text("classes=2\nnames=/nonexistent.names\n")
    with pytest.raises(FileNotFoundError, match="nonexistent.names"):
        dn.train(data, cfg, progress=False)
    data.write_text("classes = 2\n")
    with pytest.raises(dn.CfgParseError, match="no 'train' list"):
        dn.train(data, cfg, progress=False)


def test_regression_on_voc_mini(tmp_path):
    if not os.path.isdir(os.path.join(VOC_ROOT, "VOCdevkit")):
        pytest.skip("VOC subset not present")
    written = voc.convert(os.path.join(VOC_ROOT, "VOCdevkit"), str(tmp_path), progress=False)
    cfg = tiny_cfg(tmp_path / "v.cfg", classes=20, size=128, batch=8, lr=0.005, max_batches=30)
    r = dn.train(written["data"], cfg, backup=tmp_path / "bk", seed=0, progress=False)
    losses = r.losses
    assert r.iterations == 30
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])


def test_map_during_training_keeps_best_and_draws_chart(synth_set, tmp_path):
    cfg = tiny_cfg(tmp_path / "m.cfg", batch=4, max_batches=12)
    r = dn.train(synth_set / "synth.data", cfg, backup=tmp_path / "bk", seed=1, progress=False, map_every=5,
                 threads=1)
    maps = r.maps
    assert [it for it, _ in maps] == [5, 10, 12]
    assert all(0 <= m <= 1 for _, m in maps)
    assert r.best_map == pytest.approx(max(m for _, m in maps))
    assert os.path.exists(r.best) and r.best.endswith("m_best.weights")
    v = dn.validate(synth_set / "synth.data", cfg, r.best, progress=False)
    assert v.map == pytest.approx(r.best_map, abs=1e-6)
    from PIL import Image
    chart = Image.open(tmp_path / "bk" / "chart.png")
    assert chart.size == (800, 500)
    px = np.asarray(chart.convert("RGB"))
    assert ((px[:, :, 2] > 200) & (px[:, :, 0] < 80)).sum() > 50   # blue loss curve
    assert ((px[:, :, 0] > 200) & (px[:, :, 1] < 60)).sum() > 10   # red mAP points


def test_average_last_is_the_mean_of_the_last_weights(synth_set, tmp_path):
    """average_last=3: the final weights are the mean of the weights after
    each of the last three iterations, taken here from runs stopped there and
    resumed (no momentum, so that a resumed run is the same run; no BN
    recalibration)."""
    text = open(tiny_cfg(tmp_path / "t.cfg", batch=4, lr=0.001, max_batches=8)).read()
    cfg = tmp_path / "m0.cfg"
    cfg.write_text(text.replace("momentum=0.9", "momentum=0"))
    data = str(synth_set / "synth.data")
    kw = dict(seed=3, threads=1, progress=False, bn_recalibrate=False)
    ends = []
    prev = None
    for n in (6, 7, 8):  # resume step by step: the weights after iterations 6, 7, 8
        r = dn.train(data, str(cfg), prev, max_batches=n, backup=str(tmp_path / f"s{n}"), clear=prev is None, **kw)
        prev = r.backup
        ends.append(np.fromfile(r.final, np.float32)[5:])  # after the header (5 words: 3 ints + uint64)
    r = dn.train(data, str(cfg), max_batches=8, backup=str(tmp_path / "avg"), average_last=3, **kw)
    avg = np.fromfile(r.final, np.float32)[5:]
    np.testing.assert_allclose(avg, np.mean(ends, axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(avg, ends[-1])  # it is not the last weights
