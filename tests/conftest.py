"""Shared test helpers. Tests import darknet_py from this checkout (built in
place by scripts/test.sh); data from ../shared is optional and skips cleanly."""
import ctypes
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# scripts/sanitize.sh points these at the ASan+UBSan builds in build/san/
sys.path.insert(0, os.environ.get("DARKNET_PY_ROOT", ROOT))

SHARED = os.environ.get("DARKNET_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
REF_CFG = os.path.join(SHARED, "reference", "darknet-cfg")
SEED_CFG = os.path.join(SHARED, "reference", "seed-cfg")
VOC_ROOT = os.environ.get("DARKNET_VOC_ROOT", os.path.join(SHARED, "data", "voc-mini"))
DARKNET_BIN = os.environ.get("DARKNET_BIN", os.path.join(ROOT, "darknet"))
DARKNET_LIB = os.environ.get("DARKNET_LIB", os.path.join(ROOT, "libdarknet.so"))


# The C structs of dn_box, dn_detection and dn_detections, for tests that call
# the library through ctypes.
class Box(ctypes.Structure):
    _fields_ = [("x", ctypes.c_float), ("y", ctypes.c_float), ("w", ctypes.c_float), ("h", ctypes.c_float)]


class Det(ctypes.Structure):
    _fields_ = [("bbox", Box), ("objectness", ctypes.c_float), ("classes", ctypes.c_int),
                ("prob", ctypes.POINTER(ctypes.c_float))]


class Dets(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int), ("classes", ctypes.c_int), ("dets", ctypes.POINTER(Det)),
                ("prob_storage", ctypes.POINTER(ctypes.c_float))]


def c_detections(boxes, objs, probs):
    """A dn_detections over boxes, objectness and a float32 probs array
    (rows become the detections' prob views). Returns (dets, its Det array,
    probs as float32, probs' base address)."""
    probs = np.ascontiguousarray(probs, np.float32)
    n, classes = probs.shape
    arr = (Det * n)()
    base = probs.ctypes.data
    for i in range(n):
        arr[i].bbox = Box(*boxes[i])
        arr[i].objectness = objs[i]
        arr[i].classes = classes
        arr[i].prob = ctypes.cast(base + 4 * classes * i, ctypes.POINTER(ctypes.c_float))
    return Dets(n, classes, arr, None), arr, probs, base


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA build and a CUDA device (tests/test_gpu.py)")


def cfg_text(net, *sections):
    """Build cfg text: net is a dict of [net] options, sections are
    (name, dict) pairs."""
    out = ["[net]"] + [f"{k}={v}" for k, v in net.items()]
    for name, opts in sections:
        out.append(f"\n[{name}]")
        out += [f"{k}={v}" for k, v in opts.items()]
    return "\n".join(out) + "\n"


@pytest.fixture
def make_cfg(tmp_path):
    """make_cfg(text) or make_cfg(net_dict, (name, opts), ...) -> path of a cfg file."""
    counter = [0]

    def make(first, *sections):
        text = textwrap.dedent(first) if isinstance(first, str) else cfg_text(first, *sections)
        counter[0] += 1
        p = tmp_path / f"net{counter[0]}.cfg"
        p.write_text(text)
        return str(p)
    return make


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def simd_levels():
    """The values of the setting simd this CPU runs: its float kernels'
    x86-64 levels (auto: the best; 1: v3, AVX2; 0: v2, SSE4.2)."""
    from darknet_py import _core
    return ["auto", "0"] + (["1"] if _core.isa_level() > 3 else [])


@pytest.fixture
def setting():
    """setting(name, value): a run-time setting of the core (darknet_py.set_option)
    for this test, restored afterwards."""
    from darknet_py import settings
    old = {}

    def set_(name, value):
        old.setdefault(name, settings.get_option(name))
        settings.set_option(name, value)
    yield set_
    for name, value in old.items():
        settings.set_option(name, value)


def run_darknet(*args, input=None, check=True, cwd=None):
    """Run ./darknet; returns CompletedProcess with text stdout/stderr."""
    if not os.path.exists(DARKNET_BIN):
        pytest.skip("./darknet is not built (run make)")
    r = subprocess.run([DARKNET_BIN, *map(str, args)], input=input, capture_output=True,
                       text=True, cwd=cwd or ROOT, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"darknet {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def rel_err(a, b):
    """Max abs error relative to the output scale."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-6, np.max(np.abs(b))))
