"""A portable build (setup.py's default, -march=x86-64-v2) runs on any x86-64
CPU with SSE4.2 and picks the kernels' level at run time. Under qemu-user as
a CPU without AVX (Nehalem: x86-64-v2) and, where qemu emulates it, one with
AVX2 and FMA (Haswell: x86-64-v3), the float forward of a network with every
float conv path (direct first layer, Winograd 3x3, implicit GEMM 1x1,
depthwise), a training step through them and the int8 forward of its
ternary twin give the outputs of the native run of the same build, at this
CPU's best level. An instruction the emulated CPU lacks would kill the run
(SIGILL). Skips without qemu-x86_64 (scripts/setup.sh installs qemu-user).

The portable extension is built once into build/portable-py (about two
minutes on two cores; later runs reuse it)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU = shutil.which("qemu-x86_64")
LIB = os.path.join(ROOT, "build", "portable-py", "lib")

pytestmark = pytest.mark.skipif(QEMU is None, reason="qemu-x86_64 (Debian's qemu-user) is not installed")

CFG = """[net]
batch=2
width=24
height=24
channels=3
learning_rate=0.01
momentum=0.9
decay=0.0005

[convolutional]
filters=8
size=3
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=3
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
groups=16
size=3
pad=1
activation=leaky

[convolutional]
filters=12
size=3
stride=2
pad=1
activation=linear
"""

# Runs in the interpreter under test: the outputs as JSON lists on stdout.
PROBE = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import darknet_py as dn
from darknet_py import _core
cfg = sys.argv[2]
x = np.random.default_rng(0).random((2, 3, 24, 24), dtype=np.float32)
out = {"level": _core.isa_level(), "ternary_simd": _core.ternary_simd()}
net = _core.Network(cfg, 2, 7)
out["forward"] = net.forward(x).ravel().tolist()
net.set_train(True)
net.zero_grads()
y = net.forward(x)
net.backward(np.ascontiguousarray(np.cos(y.ravel()), np.float32))
out["grad_w1"] = np.asarray(net.grads(1)["weights"]).ravel().tolist()
out["grad_w3"] = np.asarray(net.grads(3)["weights"]).ravel().tolist()
tern = _core.Network(cfg.replace(".cfg", "_t.cfg"), 2, 7)
_core.set_ternary_kernel(tern, "int8")
out["int8"] = tern.forward(x).ravel().tolist()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def portable_lib():
    """build/portable-py/lib: darknet_py with an extension built as setup.py builds a wheel."""
    env = dict(os.environ, DARKNET_MARCH="x86-64-v2")
    env.pop("DARKNET_TEST_HOOKS", None)
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", LIB, "--build-temp",
                        os.path.join(ROOT, "build", "portable-py", "tmp"), "-j", str(os.cpu_count() or 1)],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    pkg = os.path.join(LIB, "darknet_py")
    for name in os.listdir(os.path.join(ROOT, "darknet_py")):
        if name.endswith(".py"):
            shutil.copy(os.path.join(ROOT, "darknet_py", name), pkg)
    return LIB


@pytest.fixture(scope="module")
def cfgs(tmp_path_factory):
    d = tmp_path_factory.mktemp("portable")
    cfg = d / "net.cfg"
    cfg.write_text(CFG)
    (d / "net_t.cfg").write_text(CFG.replace("[convolutional]\n", "[convolutional]\nternary=1\n"))
    return str(cfg)


def run(lib, cfg, cpu=None):
    cmd = [sys.executable, "-c", PROBE, lib, cfg]
    if cpu:
        cmd = [QEMU, "-cpu", cpu] + cmd
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    return r


def test_native_run_of_the_portable_build(portable_lib, cfgs):
    r = run(portable_lib, cfgs)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["level"] in (2, 3, 4)
    # the build for this machine (scripts/setup.sh) computes the same
    from darknet_py import _core
    assert out["level"] == _core.isa_level()


@pytest.mark.parametrize("cpu, level", [("Nehalem", 2), ("Haswell", 3)])
def test_older_cpus_under_qemu(portable_lib, cfgs, cpu, level):
    native = run(portable_lib, cfgs)
    assert native.returncode == 0, native.stderr[-3000:]
    want = json.loads(native.stdout)
    r = run(portable_lib, cfgs, cpu)
    if cpu == "Haswell" and r.returncode != 0 and "Illegal instruction" in r.stderr + str(r.returncode):
        pytest.skip("this qemu does not emulate all of AVX2/FMA")
    assert r.returncode == 0, f"under qemu -cpu {cpu}: rc {r.returncode}\n{r.stderr[-3000:]}"
    got = json.loads(r.stdout)
    assert got["level"] == level
    assert got["ternary_simd"] <= (0 if level == 2 else 1)
    for key in ("forward", "grad_w1", "grad_w3", "int8"):
        a, b = np.array(got[key]), np.array(want[key])
        assert a.shape == b.shape and a.size > 0
        scale = np.abs(b).max()
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * scale, err_msg=f"{key} under {cpu}")
