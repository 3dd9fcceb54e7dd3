"""Run-time settings (csrc/core/settings.c): one table read from the
environment once, changed by darknet_py.set_option / option_context and by
the CLI's -option name=value; bad names and values are errors that list the
valid ones, from Python and from the CLI."""
import os
import subprocess
import sys

import numpy as np
import pytest

import darknet_py as dn
from darknet_py import _core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_defaults_and_description():
    opts = dn.describe_options()
    assert set(opts) == {"conv_algo", "ternary_algo", "simd", "cudnn"}
    for name, (value, text) in opts.items():
        assert dn.get_option(name) == value
        assert name in text and "environment" in text


def test_set_get_and_context():
    assert dn.get_option("conv_algo") == "auto"
    with dn.option_context(conv_algo="ref", simd=0, cudnn=False):
        assert dn.get_option("conv_algo") == "ref"
        assert dn.get_option("simd") == "0"
        assert dn.get_option("cudnn") == "0"
        assert _core.ternary_simd() == 0
    assert dn.get_option("conv_algo") == "auto"
    assert dn.get_option("cudnn") == "1"
    assert _core.ternary_simd() == _core.ternary_simd_available()
    dn.set_option("ternary_algo", "packed")
    try:
        assert dn.get_option("ternary_algo") == "packed"
    finally:
        dn.set_option("ternary_algo", None)
    assert dn.get_option("ternary_algo") == "auto"


def test_context_restores_after_an_error():
    with pytest.raises(RuntimeError):
        with dn.option_context(conv_algo="winograd"):
            raise RuntimeError("inside")
    assert dn.get_option("conv_algo") == "auto"


@pytest.mark.parametrize("name, value, match", [
    ("conv_algo", "fast", r"conv_algo: unknown value 'fast' \(auto, ref, gemm, winograd, direct\)"),
    ("simd", 7, r"unknown value '7'"),
    ("no_such", "1", r"unknown setting 'no_such' \(settings: conv_algo, ternary_algo"),
])
def test_bad_values_are_errors(name, value, match):
    with pytest.raises(dn.DarknetValueError, match=match):
        dn.set_option(name, value)
    if name == "no_such":
        with pytest.raises(dn.DarknetValueError, match=match):
            dn.get_option(name)


def test_setting_changes_the_path_not_the_result(make_cfg, rng):
    """The float conv's paths agree to rounding (ref: im2col + BLAS)."""
    cfg = make_cfg({"width": 12, "height": 12, "channels": 3},
                   ("convolutional", {"filters": 8, "size": 3, "pad": 1, "activation": "leaky"}))
    net = dn.Network(cfg)
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    want = net.forward(x).copy()
    with dn.option_context(conv_algo="ref"):
        got = net.forward(x).copy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def run_py(code, env=None):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})))


def test_environment_read_once_at_first_use():
    r = run_py("import darknet_py as dn, os; print(dn.get_option('ternary_algo'));"
               "os.environ['DN_TERNARY_ALGO'] = 'direct'; print(dn.get_option('ternary_algo'))",
               {"DN_TERNARY_ALGO": "packed"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["packed", "packed"]


def test_bad_environment_value_warns():
    r = run_py("import darknet_py as dn; print(dn.get_option('conv_algo'))", {"DN_CONV_ALGO": "fastest"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["auto"]
    assert "DN_CONV_ALGO=fastest is not one of the values of the setting conv_algo" in r.stderr


def test_cli_option(tmp_path, capfd):
    assert _core.cli_main(["darknet", "-option", "conv_algo=gemm", "-option", "bogus"]) == 1
    assert "-option bogus: expected name=value" in capfd.readouterr().err
    assert _core.cli_main(["darknet", "-option", "ternary_algo=int4", "partial"]) == 1
    assert "ternary_algo: unknown value 'int4'" in capfd.readouterr().err
    # a good -option holds for the command only (the CLI runs in-process here)
    assert _core.cli_main(["darknet", "-option", "conv_algo=ref", "partial"]) == 1
    assert dn.get_option("conv_algo") == "auto"
    assert dn.get_option("ternary_algo") == "auto"
