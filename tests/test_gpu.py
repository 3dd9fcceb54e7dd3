"""The CUDA backend (GPU=1 / DARKNET_GPU=1).

Without a GPU (CI): the CUDA sources compile with nvcc when it is installed,
every kernel launcher the host code calls is defined, and asking a CPU build
(or a machine without a device) for a GPU is a clear DarknetError / CLI
message. With a CUDA build and a device (tests marked `gpu`, skipped
otherwise): every layer's forward and backward on the device against the
host on random inputs, the device TWN quantiser against the host one (alpha
and codes identical), short training runs whose loss curves match, and the
miniature staged run on the device. scripts/gpu_check.sh runs this file and
the GPU benchmark in one go.
"""
import concurrent.futures
import glob
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import darknet_py as dn
from darknet_py import _core, synth, voc
from darknet_py.network import cuda_available, parse_device
from darknet_py.training import _gpu_list
from conftest import ROOT, SHARED, run_darknet

HAVE_GPU = cuda_available()
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="needs a CUDA build (DARKNET_GPU=1) and a CUDA device")
CUDA_PATH = os.environ.get("CUDA_PATH", "/usr/local/cuda")
NVCC = shutil.which("nvcc") or next((p for p in [os.path.join(CUDA_PATH, "bin", "nvcc")] if os.path.exists(p)), None)
# cuDNN's headers and library: CUDNN_DIR, or what scripts/test.sh unpacked from pip's wheel, or the toolkit's
CUDNN_DIR = next((d for d in [os.environ.get("CUDNN_DIR"), os.path.join(ROOT, "build", "cudnn", "nvidia", "cudnn"),
                              CUDA_PATH] if d and os.path.exists(os.path.join(d, "include", "cudnn.h"))), None)


def gpu_sources():
    lines = open(os.path.join(ROOT, "csrc", "sources_gpu.txt")).read().split("\n")
    return [l.strip() for l in lines if l.strip() and not l.startswith("#")]


# ------------------------------------------------------------------ without a GPU

@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
def test_cuda_sources_compile(tmp_path):
    """nvcc -c every .cu (one virtual arch: a compile check, not a fat binary),
    the backend's C files with -DDN_GPU -Werror, and every dn_cuda_* launcher
    they call is defined by the kernels."""
    srcs = gpu_sources()
    cus = [s for s in srcs if s.endswith(".cu")]
    cs = [s for s in srcs if s.endswith(".c")]
    assert cus and cs
    inc = ["-Icsrc/include", f"-I{CUDA_PATH}/include"]
    jobs = [[NVCC, "-std=c++14", "-O1", "-gencode", "arch=compute_75,code=compute_75", "-Xcompiler", "-Wall",
             "-Icsrc/include", "-c", s, "-o", str(tmp_path / (os.path.basename(s) + ".o"))] for s in cus]
    if os.path.exists(os.path.join(CUDA_PATH, "include", "cublas_v2.h")):
        jobs.append([NVCC, "-std=c++14", "-DDN_USE_CUBLAS", "-gencode", "arch=compute_75,code=compute_75",
                     "-Icsrc/include", "-c", "csrc/kernels/cuda/blas.cu", "-o", str(tmp_path / "blas_cublas.o")])
    if CUDNN_DIR:
        jobs.append([NVCC, "-std=c++14", "-DDN_USE_CUDNN", "-gencode", "arch=compute_75,code=compute_75",
                     "-Xcompiler", "-Wall", "-Icsrc/include", f"-I{CUDNN_DIR}/include", "-c",
                     "csrc/kernels/cuda/dnn.cu", "-o", str(tmp_path / "dnn_cudnn.o")])
    jobs += [["cc", "-std=c11", "-D_GNU_SOURCE", "-DDN_GPU", "-Wall", "-Wextra", "-Werror", *inc, "-c", s,
              "-o", str(tmp_path / (os.path.basename(s) + ".o"))] for s in cs + ["csrc/core/device.c"]]

    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # scripts/sanitize.sh preloads libasan

    def run(cmd):
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        for cmd, r in zip(jobs, ex.map(run, jobs)):
            assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout}\n{r.stderr}"
            assert "warning" not in r.stderr.lower(), f"{' '.join(cmd)}\n{r.stderr}"

    def symbols(objs, kind):
        out = subprocess.run(["nm", *objs], capture_output=True, text=True, check=True).stdout
        return {m.group(2) for m in re.finditer(r"^\s*\S*\s+([A-Za-z])\s+(dn_cuda_\w+)$", out, re.M)
                if (m.group(1) == "U") == (kind == "U")}

    used = symbols([str(tmp_path / (os.path.basename(s) + ".o")) for s in cs], "U")
    defined = symbols([str(tmp_path / (os.path.basename(s) + ".o")) for s in cus], "T")
    assert used and not used - defined, f"launchers called but not defined: {sorted(used - defined)}"
    header = open(os.path.join(ROOT, "csrc/kernels/cuda/cuda_kernels.h")).read()
    declared = set(re.findall(r"\b(dn_cuda_\w+)\(", header))
    assert declared <= defined, f"declared but not defined: {sorted(declared - defined)}"
    if CUDNN_DIR:  # the cuDNN build calls only what libcudnn exports
        libs = sorted(glob.glob(os.path.join(CUDNN_DIR, "lib*", "libcudnn.so*")))
        if libs:
            calls = set(re.findall(r"^\s+U (cudnn\w+)$", subprocess.run(
                ["nm", str(tmp_path / "dnn_cudnn.o")], capture_output=True, text=True, check=True).stdout, re.M))
            exported = set(re.findall(r" T (cudnn\w+)", subprocess.run(
                ["nm", "-D", libs[0]], capture_output=True, text=True, check=True).stdout))
            assert len(calls) > 15 and calls <= exported, f"not in {libs[0]}: {sorted(calls - exported)}"


@pytest.mark.skipif(os.environ.get("DARKNET_SKIP_EMU") == "1", reason="DARKNET_SKIP_EMU=1")
def test_backend_on_the_cpu_emulator(tmp_path):
    """Build the extension against the CPU emulator of the CUDA subset
    (DARKNET_GPU=emu: the same kernels, network code and layers, the .cu
    files compiled as C++, the convolutions on the emulator's cuDNN subset)
    and run this file's GPU tests with it: every layer, the quantiser, host
    writes, dropout, resizing, validation and the loss curves. Then build it
    without cuDNN (CUDNN=0, as a plain GPU=1 build) and run the conv layers
    again on im2col + GEMM. About 4 minutes on 2 cores; DARKNET_SKIP_EMU=1
    skips it."""
    runs = [("1", "layer_forward or ternarize or params_written or dropout or loss_curve or validate_on or resize "
                  "or cudnn_in_use or workspace_limit"),
            ("0", "(layer_forward and conv) or resize or cudnn_in_use")]
    for cudnn, tests in runs:
        build = tmp_path / f"cudnn{cudnn}"
        r = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "-j", "2", "--build-temp",
                            str(build / "bt"), "--build-lib", str(build / "bl")],
                           cwd=ROOT, env=dict(os.environ, DARKNET_GPU="emu", CUDNN=cudnn, DARKNET_TEST_HOOKS="1"),
                           capture_output=True, text=True, timeout=1200)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        tree = build / "tree"
        skip = shutil.ignore_patterns("_core*.so", "__pycache__", "*.pyc")
        for d in ("tests", "darknet_py", "cfg"):
            shutil.copytree(os.path.join(ROOT, d), tree / d, ignore=skip)
        for so in (build / "bl" / "darknet_py").glob("_core*.so"):
            shutil.copy(so, tree / "darknet_py")
        env = dict(os.environ, DARKNET_SHARED=SHARED, DN_EMU_DEVICES="2", DARKNET_EXPECT_CUDNN=cudnn)
        # the tree's emulator build, which is not sanitized: under scripts/sanitize.sh
        # without that build's path and preloaded ASan runtime
        for k in ("DARKNET_GPU", "DARKNET_CUDNN", "DARKNET_PY_ROOT", "LD_PRELOAD"):
            env.pop(k, None)
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", "-k", tests,
                            "tests/test_gpu.py"], cwd=tree, env=env, capture_output=True, text=True, timeout=1200)
        out = r.stdout + r.stderr
        assert r.returncode == 0 and " passed" in out and "skipped" not in out, f"CUDNN={cudnn}\n{out[-5000:]}"


def test_parse_device_and_gpu_lists():
    assert parse_device("cpu") == -1 and parse_device(None) == -1
    assert parse_device("cuda") == 0 and parse_device("cuda:1") == 1 and parse_device(2) == 2
    for bad in ("gpu", "cuda:x", "cuda:-1", -1, True, 1.5):
        with pytest.raises(dn.DarknetValueError):
            parse_device(bad)
    assert _gpu_list(None) == [] and _gpu_list(0) == [0] and _gpu_list("0,1") == [0, 1]
    assert _gpu_list([1, 0]) == [1, 0]
    for bad in ("0,a", [0, 0], [-1], "x"):
        with pytest.raises(dn.DarknetValueError):
            _gpu_list(bad)


def tiny_net_cfg(make_cfg, batch=2, size=16):
    return make_cfg({"batch": batch, "width": size, "height": size, "channels": 3},
                    ("convolutional", {"filters": 4, "size": 3, "pad": 1, "activation": "leaky",
                                       "batch_normalize": 1}))


@pytest.mark.skipif(HAVE_GPU, reason="a CUDA device is present")
def test_device_request_without_gpu_is_a_clear_error(make_cfg):
    cfg = tiny_net_cfg(make_cfg)
    with pytest.raises(dn.DarknetError, match=r"GPU 0 requested.*(no CUDA support|no CUDA device)"):
        dn.Network(cfg, device="cuda:0")
    net = dn.Network(cfg)
    assert net.device == "cpu"
    with pytest.raises(dn.DarknetError, match="GPU 1 requested"):
        net.to("cuda:1")
    assert net.device == "cpu"
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    assert np.isfinite(net.forward(x)).all()  # still usable on the host
    with pytest.raises(dn.DarknetError, match="GPU 0 requested"):
        _core.testing.cuda_ternarize(np.ones(8, np.float32), 1, 0)


@pytest.fixture(scope="module")
def synth_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_synth")
    info = synth.make_synthetic_voc(str(out), images=12, classes=2, size=96, seed=3, split=0.75,
                                    min_objects=1, max_objects=2, progress=False)
    return voc.convert(info["devkit"], str(out), classes=info["names"], data_name="synth.data",
                       progress=False)["data"]


@pytest.mark.skipif(HAVE_GPU, reason="a CUDA device is present")
def test_train_on_missing_gpu_errors(synth_small, tmp_path):
    from test_train import tiny_cfg
    cfg = tiny_cfg(tmp_path / "t.cfg", batch=4, max_batches=2)
    with pytest.raises(dn.DarknetError, match="GPU 0 requested"):
        dn.train(synth_small, cfg, max_batches=2, backup=str(tmp_path / "b"), progress=False, gpus=[0])
    r = run_darknet("detector", "train", synth_small, cfg, "-gpus", "0", "-backup", str(tmp_path / "c"),
                    check=False)
    assert r.returncode == 1 and "GPU 0 requested" in r.stderr, r.stderr
    r = run_darknet("detector", "train", synth_small, cfg, "-gpus", "0,x", check=False)
    assert r.returncode == 1 and "-gpus '0,x'" in r.stderr, r.stderr


@pytest.mark.skipif(HAVE_GPU, reason="a CUDA device is present")
def test_inference_on_missing_gpu_errors(synth_small, tmp_path):
    """validate(device=...), `detector map|test -gpus 0`: the same clear error as
    training; -nogpu runs on the host; a CPU ternary kernel with -gpus is refused."""
    from test_train import tiny_cfg
    cfg = tiny_cfg(tmp_path / "t.cfg", batch=1, size=64)
    with pytest.raises(dn.DarknetError, match="GPU 0 requested"):
        dn.validate(synth_small, cfg, None, progress=False, device="cuda:0")
    r = subprocess.run([sys.executable, "-m", "darknet_py", "map", synth_small, cfg, "", "--device", "cuda:0",
                        "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "map: error: GPU 0 requested" in r.stderr, r.stderr
    img = open(os.path.join(os.path.dirname(synth_small), "2007_val.txt")).readline().strip()
    for cmd in (["map", synth_small, cfg, ""], ["test", synth_small, cfg, "", img, "-out", tmp_path / "p"]):
        r = run_darknet("detector", *cmd, "-gpus", "0", check=False)
        assert r.returncode == 1 and "GPU 0 requested" in r.stderr, r.stderr
        r = run_darknet("detector", *cmd, "-gpus", "0", "-ternary_kernel", "int8", check=False)
        assert r.returncode == 1 and "run on the CPU" in r.stderr, r.stderr
        r = run_darknet("detector", *cmd, "-nogpu", "-ternary_kernel", "int8")
        assert "mAP" in r.stdout or "Predicted in" in r.stdout, r.stdout


# ------------------------------------------------------------------ on a GPU

NET = {"batch": 2, "width": 12, "height": 10, "channels": 4, "momentum": 0.9, "decay": 0.0005}


def conv(**kw):
    opts = {"filters": 6, "size": 3, "stride": 1, "pad": 1, "activation": "leaky"}
    opts.update(kw)
    return ("convolutional", opts)


ACTS = ["linear", "leaky", "logistic", "relu", "relie", "ramp", "tanh", "swish", "mish"]

LAYER_CASES = {
    **{f"conv_{a}": [conv(activation=a)] for a in ACTS},
    "conv_bn": [conv(batch_normalize=1)],
    "conv_bn_swish": [conv(batch_normalize=1, activation="swish")],
    "conv_stride2": [conv(stride=2, size=3, batch_normalize=1)],
    "conv_1x1": [conv(size=1, pad=0, filters=5)],
    "conv_groups": [conv(groups=2, filters=6, batch_normalize=1)],
    "conv_5x5_pad0": [conv(size=5, pad=0, filters=3)],
    "conv_ternary": [conv(ternary=1, batch_normalize=1)],
    "conv_ternary_filter": [conv(ternary=1, ternary_scale="filter", batch_normalize=1, activation="mish")],
    "maxpool_2": [conv(), ("maxpool", {"size": 2, "stride": 2})],
    "maxpool_3s1": [conv(), ("maxpool", {"size": 3, "stride": 1})],
    "avgpool": [conv(), ("avgpool", {})],
    "route": [conv(), conv(filters=4), ("route", {"layers": "-1,-2"})],
    "route_groups": [conv(), ("route", {"layers": "-1", "groups": 2, "group_id": 1})],
    "reorg": [conv(filters=8), ("reorg", {"stride": 2})],
    "reorg_reverse": [conv(filters=8), ("reorg", {"stride": 2, "reverse": 1})],
    "shortcut": [conv(), conv(), ("shortcut", {"from": -2, "activation": "leaky"})],
    "shortcut_scaled": [conv(), conv(stride=2), ("upsample", {"stride": 2}),
                        ("shortcut", {"from": -3, "alpha": 0.5, "beta": 2, "activation": "swish"})],
    "upsample": [conv(), ("upsample", {"stride": 2, "scale": 0.5})],
    "upsample_reverse": [conv(), ("upsample", {"stride": -2})],
    "connected": [conv(), ("connected", {"output": 7, "activation": "leaky"})],
    "connected_bn": [("connected", {"output": 9, "activation": "tanh", "batch_normalize": 1})],
    "softmax": [conv(), ("connected", {"output": 10, "activation": "linear"}), ("softmax", {"groups": 2})],
    "softmax_temp": [conv(), ("softmax", {"temperature": 2})],
}


def net_pair(path, batch, seed=7, train=True):
    cpu = _core.Network(path, batch, seed)
    gpu = _core.Network(path, batch, seed)
    if train:
        cpu.set_train(True)
        gpu.set_train(True)
    gpu.set_device(0)
    assert gpu.device == 0 and cpu.device == -1
    return cpu, gpu


def assert_close(a, b, what, rtol=2e-3, atol=2e-4):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, what
    scale = max(1.0, float(np.abs(a).max(initial=0)))
    np.testing.assert_allclose(b, a, rtol=rtol, atol=atol * scale, err_msg=what)


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_forward_backward_gpu_vs_cpu(case, make_cfg, rng):
    path = make_cfg(NET, *LAYER_CASES[case])
    cpu, gpu = net_pair(path, NET["batch"])
    x = rng.standard_normal((NET["batch"], NET["channels"], NET["height"], NET["width"])).astype(np.float32)
    yc, yg = cpu.forward(x), gpu.forward(x)
    assert_close(yc, yg, f"{case}: forward")
    for i in range(len(cpu.layers)):
        assert_close(cpu.layer_output(i), gpu.layer_output(i), f"{case}: layer {i} output")
    og = rng.standard_normal(yc.shape).astype(np.float32)
    gc, gg = cpu.backward(og), gpu.backward(og)
    assert_close(gc, gg, f"{case}: input gradient")
    for i in range(len(cpu.layers)):
        c, g = cpu.grads(i), gpu.grads(i)
        assert c.keys() == g.keys()
        for k in c:
            assert_close(c[k], g[k], f"{case}: layer {i} {k} gradient")
        pc, pg = cpu.params(i), gpu.params(i)
        for k in pc:  # rolling statistics moved the same way
            assert_close(pc[k], pg[k], f"{case}: layer {i} {k}")
    # inference mode (rolling statistics, folded epilogues on the host)
    cpu.set_train(False)
    gpu.set_train(False)
    assert_close(cpu.forward(x), gpu.forward(x), f"{case}: inference forward")


@needs_gpu
@pytest.mark.gpu
def test_conv_after_resize_gpu_vs_cpu(make_cfg, rng):
    """A new input size or batch remakes what the device conv keeps per shape
    (cuDNN's plan, the workspace): forward and backward still match the host."""
    path = make_cfg(NET, conv(batch_normalize=1), conv(stride=2, filters=5), conv(size=1, pad=0, filters=4))
    cpu, gpu = net_pair(path, NET["batch"])
    for shape in ((2, 4, 10, 12), (1, 4, 16, 8), (3, 4, 6, 20), (2, 4, 10, 12)):
        x = rng.standard_normal(shape).astype(np.float32)
        yc, yg = cpu.forward(x), gpu.forward(x)
        assert_close(yc, yg, f"{shape}: forward")
        og = rng.standard_normal(yc.shape).astype(np.float32)
        assert_close(cpu.backward(og), gpu.backward(og), f"{shape}: input gradient")
        for i in range(len(cpu.layers)):
            assert_close(cpu.grads(i)["weights"], gpu.grads(i)["weights"], f"{shape}: layer {i} weights gradient")


@needs_gpu
@pytest.mark.gpu
def test_cudnn_algorithms_within_the_workspace_limit(make_cfg, rng):
    """[net] workspace_size_limit_MB (default 1024) bounds the workspace of
    cuDNN's algorithms, the device workspace grows to what the chosen ones
    need, and the results still match the host. On the emulator the fastest
    listed algorithm (FFT) needs more than the im2col buffer: taken by
    default, passed over with the limit 0."""
    layers = [conv(batch_normalize=1), conv(stride=2, filters=5), conv(size=1, pad=0, filters=4)]
    emulated = "DN_EMU_DEVICES" in os.environ
    for limit in (None, 0):
        path = make_cfg(dict(NET, **({} if limit is None else {"workspace_size_limit_MB": limit})), *layers)
        cpu, gpu = net_pair(path, NET["batch"])
        if not gpu.cudnn:
            pytest.skip("the convolutions do not run on cuDNN")
        assert all(l["cudnn"] is None for l in cpu.layers)
        x = rng.standard_normal((2, 4, 10, 12)).astype(np.float32)
        yc, yg = cpu.forward(x), gpu.forward(x)
        assert_close(yc, yg, f"limit {limit}: forward")
        og = rng.standard_normal(yc.shape).astype(np.float32)
        assert_close(cpu.backward(og), gpu.backward(og), f"limit {limit}: input gradient")
        for i in range(3):
            assert_close(cpu.grads(i)["weights"], gpu.grads(i)["weights"], f"limit {limit}: layer {i} weights")
        for l in gpu.layers:
            info = l["cudnn"]
            assert set(info) == {"forward", "backward_filter", "backward_data", "workspace"}
            c, h, w = l["input_shape"]
            _, oh, ow = l["output_shape"]
            im2col = c * l["size"] ** 2 * oh * ow * 4
            if limit == 0:
                assert info["workspace"] < 1 << 20
            if emulated and l["size"] == 3:
                want = ("GEMM", "ALGO_1", "ALGO_1") if limit == 0 else ("FFT", "FFT", "FFT")
                assert (info["forward"], info["backward_filter"], info["backward_data"]) == want
                assert info["workspace"] == (im2col if limit == 0 else im2col + (4 << 20))


@needs_gpu
@pytest.mark.gpu
def test_cudnn_in_use_as_built_and_asked(make_cfg, setting):
    """Network.cudnn says whether the convolutions run on cuDNN; the runs that
    know which to expect (the emulator test, scripts/gpu_check.sh) say so in
    DARKNET_EXPECT_CUDNN."""
    expect = os.environ.get("DARKNET_EXPECT_CUDNN")
    if expect is None:
        pytest.skip("DARKNET_EXPECT_CUDNN is not set")
    cfg = make_cfg(NET, conv())
    net = dn.Network(cfg, device="cuda:0")
    assert net.cudnn == (expect == "1")
    assert not net.to("cpu").cudnn
    setting("cudnn", "0")
    assert not dn.Network(cfg, device="cuda:0").cudnn


@needs_gpu
@pytest.mark.gpu
def test_dropout_on_gpu(make_cfg, rng):
    path = make_cfg(NET, conv(), ("dropout", {"probability": 0.3}))
    cpu, gpu = net_pair(path, NET["batch"])
    x = rng.standard_normal((NET["batch"], NET["channels"], NET["height"], NET["width"])).astype(np.float32)
    y = gpu.forward(x)
    z = gpu.layer_output(0)
    kept = y != 0
    np.testing.assert_allclose(y[kept], z[kept] / 0.7, rtol=1e-5)
    assert 0.55 < kept.mean() < 0.85
    og = np.ones_like(y)
    gpu.backward(og)  # through the same mask: the conv's bias gradient sums the kept scale
    cpu.set_train(False)
    gpu.set_train(False)
    assert_close(cpu.forward(x), gpu.forward(x), "dropout inference is the identity")


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("groups,per", [(1, 1), (1, 7), (1, 4608), (1, 300_001), (16, 27), (64, 1152), (3, 50_000)])
def test_ternarize_gpu_identical_to_cpu(groups, per, rng):
    for scale in (1e-3, 1.0, 30.0):
        w = (rng.standard_normal(groups * per) * scale).astype(np.float32)
        tc, ac = _core.ternarize(w, groups)
        tg, ag = _core.testing.cuda_ternarize(w, groups, 0)
        np.testing.assert_array_equal(ag, ac)
        np.testing.assert_array_equal(tg, tc)
    z = np.zeros(groups * per, np.float32)  # all zero: alpha 0, never a division by zero
    tg, ag = _core.testing.cuda_ternarize(z, groups, 0)
    assert not tg.any() and not ag.any()


def _loss_curves(cfg, data, steps, batch, size):
    train_list = [l.split("=", 1)[1].strip() for l in open(data) if l.startswith("train")][0]
    ld = _core.Loader(train_list, batch=batch, classes=2, max_boxes=30, augment=False, seed=0)
    batches = [ld.next(size, size) for _ in range(3)]
    cpu, gpu = net_pair(cfg, batch, seed=1)
    lc = [cpu.train_step(*batches[k % 3]) for k in range(steps)]
    lg = [gpu.train_step(*batches[k % 3]) for k in range(steps)]
    return np.array(lc), np.array(lg), cpu, gpu


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("ternary", [0, 1])
def test_training_loss_curve_gpu_vs_cpu(synth_small, tmp_path, ternary):
    from test_train import tiny_cfg
    cfg = tiny_cfg(tmp_path / "t.cfg", batch=2, lr=0.001, burn_in=5, max_batches=100, size=64)
    if ternary:
        text = open(cfg).read().replace("[convolutional]\nbatch_normalize=1",
                                        "[convolutional]\nternary=1\nbatch_normalize=1")
        open(cfg, "w").write(text)
    lc, lg, cpu, gpu = _loss_curves(cfg, synth_small, 12, 2, 64)
    np.testing.assert_allclose(lg[:5], lc[:5], rtol=2e-3)
    np.testing.assert_allclose(lg, lc, rtol=0.05)
    for i in range(len(cpu.layers)):  # the weights went the same way, and came back to the host
        for k, v in cpu.params(i).items():
            assert_close(v, gpu.params(i)[k], f"layer {i} {k} after training", rtol=0.02, atol=2e-3)


@needs_gpu
@pytest.mark.gpu
def test_params_written_on_host_reach_the_device(make_cfg, rng):
    path = make_cfg(NET, conv(batch_normalize=1, ternary=1))
    cpu, gpu = net_pair(path, NET["batch"], train=False)
    x = rng.standard_normal((NET["batch"], NET["channels"], NET["height"], NET["width"])).astype(np.float32)
    gpu.forward(x)
    for net in (cpu, gpu):
        net.params(0)["weights"][:] *= -2  # through the view: the device copy must follow
    assert_close(cpu.forward(x), gpu.forward(x), "after a host write")
    gpu.set_device(-1)
    assert gpu.device == -1
    assert_close(cpu.forward(x), gpu.forward(x), "back on the host")


REGION = [conv(batch_normalize=1, ternary=1, filters=8), conv(batch_normalize=1, filters=8),
          ("maxpool", {"size": 2, "stride": 2}), conv(size=1, pad=0, filters=14, activation="linear", ternary=1),
          ("region", {"anchors": "1,1, 2,2", "classes": 2, "coords": 4, "num": 2, "softmax": 1})]


@needs_gpu
@pytest.mark.gpu
def test_params_written_on_the_device_reach_the_host_caches(make_cfg, rng):
    """Train steps on the device, then back on the host: the host's weight
    caches (TWN values, Winograd filters, ternary codes), made before and
    not hashed (no params() view was handed out), are remade from the
    params the device brought back (detaching bumps the params version)."""
    net_opts = dict(NET, width=16, height=16, channels=8, learning_rate=0.05, policy="constant", max_batches=100)
    path = make_cfg(net_opts, *REGION)
    net = _core.Network(path, 2, 3)
    x = rng.random((2, 8, 16, 16), dtype=np.float32)
    truth = np.zeros((2, 4, 5), np.float32)
    truth[:, 0] = [0.5, 0.5, 0.3, 0.4, 1]
    before = {}
    for k in ("off", "float", "int8"):
        _core.set_ternary_kernel(net, k)
        before[k] = net.forward(x).copy()
    net.set_train(True)
    net.set_device(0)
    for _ in range(2):
        net.train_step(x, truth)
    net.set_device(-1)
    net.set_train(False)
    after = {}
    for k in ("off", "float", "int8"):
        _core.set_ternary_kernel(net, k)
        after[k] = net.forward(x).copy()
    ref = _core.Network(path, 2, 3)  # no caches: the params the device brought back
    for i in range(len(net.layers)):
        for name, v in net.params(i).items():
            ref.params(i)[name][:] = v
    for k in ("off", "float", "int8"):
        assert not np.array_equal(after[k], before[k]), k
        _core.set_ternary_kernel(ref, k)
        np.testing.assert_array_equal(ref.forward(x), after[k], err_msg=k)


@needs_gpu
@pytest.mark.gpu
def test_validate_on_the_device_as_on_the_host(synth_small, tmp_path):
    """validate(device=...) (which `detector map -gpus`, and -map while training
    on a GPU, use) runs the network on the device: the same detections."""
    from test_train import tiny_cfg
    cfg = tiny_cfg(tmp_path / "v.cfg", batch=1, size=64)
    w = str(tmp_path / "v.weights")
    dn.Network(cfg).save_weights(w)
    host = dn.validate(synth_small, cfg, w, progress=False, return_detections=True)
    dev = dn.validate(synth_small, cfg, w, progress=False, return_detections=True, device="cuda:0")
    assert host.detections.keys() == dev.detections.keys() and len(host.detections) == 3
    for path, a in host.detections.items():
        b = dev.detections[path]
        assert len(a) == len(b) > 0, path
        a, b = sorted(a), sorted(b)
        assert [d[0] for d in a] == [d[0] for d in b]
        np.testing.assert_allclose([d[1] for d in a], [d[1] for d in b], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose([d[2] for d in a], [d[2] for d in b], rtol=1e-4, atol=1e-3)
    assert abs(host.map - dev.map) < 1e-6


@needs_gpu
@pytest.mark.gpu
def test_detector_map_and_test_on_gpu(synth_small, tmp_path):
    from test_train import tiny_cfg
    cfg = tiny_cfg(tmp_path / "v.cfg", batch=1, size=64)
    w = str(tmp_path / "v.weights")
    dn.Network(cfg).save_weights(w)
    maps = [re.findall(r"mean average precision.*", run_darknet("detector", "map", synth_small, cfg, w, *opt).stdout)
            for opt in (["-nogpu"], [], ["-gpus", "0"])]
    assert maps[0] == maps[1] == maps[2] and len(maps[0]) == 1, maps
    img = open(os.path.join(os.path.dirname(synth_small), "2007_val.txt")).readline().strip()
    out = [run_darknet("detector", "test", synth_small, cfg, w, img, "-thresh", ".01", "-out", tmp_path / f"p{k}",
                       *opt).stdout.splitlines()[1:] for k, opt in enumerate((["-nogpu"], ["-gpus", "0"]))]
    assert out[0] == out[1] and out[0], out


@needs_gpu
@pytest.mark.gpu
def test_train_api_on_gpu_and_staged(synth_small, tmp_path):
    from test_train import tiny_cfg
    cfg = tiny_cfg(tmp_path / "mini.cfg", batch=2, lr=0.001, burn_in=2, max_batches=10, size=64)
    r = dn.train(synth_small, cfg, max_batches=6, backup=str(tmp_path / "b"), progress=False, gpus=[0])
    assert r.iterations == 6 and os.path.exists(r.final) and np.isfinite(r.losses).all()
    rows = dn.staged_train(synth_small, cfg, None, plan="generic", iterations_per_stage=3, fp_iterations=4,
                           out_dir=str(tmp_path / "run"), progress=False, threads=1, gpus=[0])
    assert [r.stage for r in rows] == ["FP", "M0", "M1", "M2", "M3", "no staged"]
    net = dn.Network(os.path.join(tmp_path, "run", "mini_M3.cfg"), rows[4].weights)
    for i, l in enumerate(net.layers):
        if l["type"] == "convolutional":
            assert len(np.unique(net.params(i)["weights"])) <= 3
    r = run_darknet("detector", "train", synth_small, cfg, "-gpus", "0", "-backup", str(tmp_path / "c"),
                    "-max_batches", "3")
    assert "images" in r.stdout


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_GPU or _core.cuda_device_count() < 2, reason="needs two CUDA devices")
def test_two_gpus_data_parallel(synth_small, tmp_path):
    from test_train import tiny_cfg
    cfg = tiny_cfg(tmp_path / "t.cfg", batch=2, lr=0.001, burn_in=2, max_batches=10, size=64)
    r = dn.train(synth_small, cfg, max_batches=5, backup=str(tmp_path / "b"), progress=False, gpus=[0, 1])
    assert r.iterations == 5 and np.isfinite(r.losses).all() and os.path.exists(r.final)
    net = dn.Network(cfg, r.final)  # the averaged weights were written
    assert all(np.isfinite(v).all() for i in range(len(net.layers)) for v in net.params(i).values())
