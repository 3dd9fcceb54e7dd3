"""Robustness of the running library: two Networks used from two Python
threads give the single-threaded results (the GIL is released in long C
calls); data loader threads stop cleanly at close and after an error; a
network loaded/forwarded/train-stepped/freed 100 times does not grow; a
SIGKILL at any moment of a checkpoint write leaves the previous good file."""
import ctypes
import gc
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from PIL import Image

import darknet_py as dn
from darknet_py import _core
from conftest import ROOT

CFG = """[net]
batch={batch}
width=64
height=64
channels=3
learning_rate=0.001

[convolutional]
batch_normalize=1
filters=16
size=3
pad=1
activation=leaky
ternary={ternary}

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=32
size=3
pad=1
activation=leaky

[convolutional]
filters=21
size=1
activation=linear

[yolo]
mask=0,1,2
anchors=8,8,16,16,32,32
classes=2
num=3
max=4
"""


def make_cfg(tmp_path, name="n.cfg", batch=2, ternary=0):
    p = tmp_path / name
    p.write_text(CFG.format(batch=batch, ternary=ternary))
    return p


def inputs(seed, batch=2):
    return np.random.default_rng(seed).random((batch, 3, 64, 64), dtype=np.float32)


TRUTH = np.array([[[.5, .5, .3, .4, 1], [.2, .3, .1, .1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]] * 2, np.float32)


def run_two(fn_a, fn_b):
    """Run both functions at once on two threads; returns their results."""
    out, errors = [None, None], []
    barrier = threading.Barrier(2)

    def wrap(i, fn):
        try:
            barrier.wait()
            out[i] = fn()
        except BaseException as e:  # noqa: B902 - re-raised below
            errors.append(e)
    ts = [threading.Thread(target=wrap, args=(i, f)) for i, f in enumerate((fn_a, fn_b))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return out


@pytest.mark.parametrize("threads", [1, 2])
def test_two_networks_on_two_threads_match_single_threaded(tmp_path, threads):
    nets = [dn.Network(make_cfg(tmp_path, f"{i}.cfg", ternary=i), batch=2, seed=i, threads=threads)
            for i in range(2)]
    xs = [inputs(10), inputs(11)]

    def forwards(i):
        return lambda: [nets[i].forward(xs[i]).copy() for _ in range(5)]
    alone = [forwards(0)(), forwards(1)()]
    together = run_two(forwards(0), forwards(1))
    for i in range(2):
        for a, b in zip(alone[i], together[i]):
            assert np.array_equal(a, b)
    assert not np.array_equal(alone[0][0], alone[1][0])


def test_two_trainings_on_two_threads_match_single_threaded(tmp_path):
    def losses(seed):
        net = dn.Network(make_cfg(tmp_path, f"t{seed}.cfg"), batch=2, seed=seed, threads=1)
        net._net.set_train(True)
        x = inputs(seed)
        return [net._net.train_step(x, TRUTH) for _ in range(4)] + [net.params(0)["weights"].copy()]
    alone = [losses(1), losses(2)]
    together = run_two(lambda: losses(1), lambda: losses(2))
    for a, b in zip(alone, together):
        assert a[:4] == b[:4]
        assert np.array_equal(a[4], b[4])


def test_forward_releases_the_gil(tmp_path):
    """While one thread is inside forward, another runs Python code."""
    net = dn.Network(make_cfg(tmp_path), batch=8, threads=1)
    x = inputs(0, batch=8)
    net.forward(x)
    state = {"inside": False, "done": False}

    def work():
        state["inside"] = True
        for _ in range(20):
            net.forward(x)
        state["done"] = True
    t = threading.Thread(target=work)
    t.start()
    while not state["inside"]:
        pass
    count = 0
    while not state["done"]:
        count += 1
    t.join()
    assert count > 1000  # with the GIL held for the whole call, the loop could not run meanwhile


def task_count():
    return len(os.listdir("/proc/self/task"))


def image_set(tmp_path, bad=False):
    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "labels").mkdir(exist_ok=True)
    paths = []
    for i in range(3):
        p = tmp_path / "images" / f"{i}.png"
        Image.fromarray(np.full((20, 24, 3), 40 * i, np.uint8)).save(p)
        (tmp_path / "labels" / f"{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.2 0.2\n")
        paths.append(str(p) if not bad else str(p) + ".missing")
    lst = tmp_path / ("bad.txt" if bad else "list.txt")
    lst.write_text("\n".join(paths) + "\n")
    return str(lst)


def test_loader_threads_stop_at_close_and_after_errors(tmp_path):
    good, bad = image_set(tmp_path), image_set(tmp_path, bad=True)
    ld = _core.Loader(good, batch=2, classes=2, max_boxes=2)
    ld.next(32, 32)
    del ld
    gc.collect()
    base = task_count()
    for i in range(30):
        ld = _core.Loader(good, batch=2, classes=2, max_boxes=2, seed=i)
        ld.next(32, 32)  # leaves the next batch prefetching on a thread
        if i % 3 == 0:
            ld.next(48, 32)
        del ld
        strict = _core.Loader(bad, batch=2, classes=2, max_boxes=2, max_skips=1)
        with pytest.raises(dn.DarknetIOError):
            strict.next(32, 32)
        with pytest.raises(dn.DarknetIOError):  # the error stays, no thread is left behind
            strict.next(32, 32)
        del strict
    gc.collect()
    assert task_count() == base


def test_training_error_stops_the_loader_cleanly(tmp_path):
    """A training run whose list has only bad images fails with the image's
    path and leaves no thread behind."""
    lst = image_set(tmp_path, bad=True)
    data = tmp_path / "x.data"
    data.write_text(f"classes=2\ntrain={lst}\n")
    cfg = make_cfg(tmp_path)
    base = task_count()
    for _ in range(3):
        with pytest.raises(dn.DarknetIOError, match=r"no loadable image.*\.png\.missing"):
            dn.train(data, cfg, progress=False, max_batches=2, backup=tmp_path / "bk")
    assert task_count() == base


def rss_bytes():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_load_forward_train_free_100_times_does_not_grow(tmp_path):
    """Each cycle allocates ~10 MB (params, grads, outputs, deltas, weights
    file buffers); a leak of any of them would add hundreds of MB."""
    cfg = tmp_path / "big.cfg"
    cfg.write_text(CFG.format(batch=2, ternary=1).replace("filters=32", "filters=256"))
    wpath = tmp_path / "w.weights"
    dn.Network(cfg).save_weights(wpath)
    x = inputs(3)
    libc = ctypes.CDLL("libc.so.6")

    def cycle(i):
        net = dn.Network(cfg, wpath, batch=2, seed=i, threads=1)
        net.forward(x)
        net._net.set_train(True)
        net._net.train_step(x, TRUTH)
        net.save_weights(tmp_path / "out.weights")
        del net
    for i in range(20):
        cycle(i)
    gc.collect()
    libc.malloc_trim(0)
    start = rss_bytes()
    for i in range(80):
        cycle(i)
    gc.collect()
    libc.malloc_trim(0)
    grown = rss_bytes() - start
    assert grown < 24 << 20, f"RSS grew by {grown / 2**20:.1f} MB over 80 cycles"


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    import darknet_py as dn
    cfg, out = sys.argv[1], sys.argv[2]
    nets = [dn.Network(cfg, seed=s) for s in (1, 2)]
    print("ready", flush=True)
    while True:
        for n in nets:
            n.save_weights(out + ".weights")
            dn.ternary.pack(cfg, out + ".weights", out + ".tpk")
""")


def test_sigkill_during_checkpoint_writes_20_times(tmp_path):
    """A process rewrites a .weights and a packed file in a loop (two
    alternating networks); it is killed at 20 random moments. Each time both
    files load strictly and hold one of the two networks exactly."""
    cfg = tmp_path / "k.cfg"
    cfg.write_text(CFG.format(batch=1, ternary=1).replace("filters=32", "filters=128"))
    want = []
    for s in (1, 2):
        net = dn.Network(cfg, seed=s)
        net.save_weights(tmp_path / f"ref{s}.weights")
        want.append(open(tmp_path / f"ref{s}.weights", "rb").read())
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=os.environ.get("DARKNET_PY_ROOT", ROOT)))
    out = str(tmp_path / "ckpt")
    rnd = random.Random(7)
    check = dn.Network(cfg)
    for k in range(20):
        proc = subprocess.Popen([sys.executable, str(script), str(cfg), out], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        if k == 0:  # the first round needs both files written once
            while not (os.path.exists(out + ".tpk") and os.path.exists(out + ".weights")):
                time.sleep(0.01)
        try:
            proc.wait(timeout=rnd.uniform(0.01, 0.4))
        except subprocess.TimeoutExpired:
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert open(out + ".weights", "rb").read() in want
        check.load_weights(out + ".tpk")  # strict: complete, checksums good
        check.save_weights(tmp_path / "unpacked.weights")
        got = open(tmp_path / "unpacked.weights", "rb").read()
        assert got in want, f"round {k}: the packed file holds neither network"


def test_chart_of_a_diverged_run_is_drawn(tmp_path):
    """A non-finite average loss (a diverged run) leaves a gap in chart.png
    instead of a line to (int)NaN, which drew for minutes."""
    from conftest import DARKNET_LIB
    if not os.path.exists(DARKNET_LIB):
        pytest.skip("libdarknet.so is not built (run make)")
    lib = ctypes.CDLL(DARKNET_LIB)
    lib.dn_chart_save.restype = ctypes.c_int
    loss = (ctypes.c_float * 6)(5, 4, float("nan"), float("inf"), 3, 2)
    path = str(tmp_path / "chart.png")
    t0 = time.time()
    assert lib.dn_chart_save(path.encode(), 1, loss, 6, None, None, 0) == 0
    assert time.time() - t0 < 10
    assert Image.open(path).size[0] > 100


def test_argument_errors_are_darknet_errors(tmp_path):
    """The bindings' own checks and the Python layer's file checks raise
    darknet_py.errors classes, so `except DarknetError` sees them; they stay
    ValueError / FileNotFoundError too."""
    from darknet_py.errors import DarknetError, DarknetIOError, DarknetValueError
    with pytest.raises(DarknetValueError, match="groups must divide") as e:
        _core.ternarize(np.zeros(5, np.float32), 2)
    assert isinstance(e.value, DarknetError) and isinstance(e.value, ValueError)
    with pytest.raises(DarknetIOError) as e:
        dn.Network(str(tmp_path / "missing.cfg"))
    assert isinstance(e.value, DarknetError) and isinstance(e.value, FileNotFoundError)
    with pytest.raises(DarknetValueError):
        dn.evaluate({}, {}, points=7)
