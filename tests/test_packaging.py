"""The `darknet` command that pip installs runs ./darknet's C main in-process
(_core.cli_main, darknet_py.cli): same exit status and output as the binary.
With DN_TEST_PIP=1 (minutes: three builds), a copy of this checkout is
installed into fresh venvs by pip (pip install ., pip install -e ., pip
wheel .) with pip's build isolation, and the installed package and commands
are checked from another folder."""
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile

import pytest

import darknet_py as dn
from darknet_py import _core
from darknet_py import cli
from conftest import DARKNET_BIN, ROOT, run_darknet

TINY = os.path.join(ROOT, "cfg", "yolov2-tiny-voc-small.cfg")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "tiny.weights"
    dn.Network(TINY, seed=3).save_weights(path)
    return str(path)


def in_process(capfd, *args):
    """_core.cli_main(argv) with argv[0] the binary's path, so that the usage
    lines match; returns (status, stdout, stderr) of file descriptors 1, 2."""
    capfd.readouterr()
    rc = _core.cli_main([DARKNET_BIN, *map(str, args)])
    out, err = capfd.readouterr()
    return rc, out, err


@pytest.mark.parametrize("args", [(), ("nonsense",), ("ternary",), ("partial", "cfg")])
def test_usage_and_unknown_commands_as_the_binary(capfd, args):
    r = run_darknet(*args, check=False)
    rc, out, err = in_process(capfd, *args)
    assert r.returncode == 1 and rc == 1
    assert (out, err) == (r.stdout, r.stderr)
    assert "usage: " + DARKNET_BIN in err


def test_ternary_info_as_the_binary(capfd, weights):
    """A real command (loads a cfg and weights, prints a table); -dont_show
    and -i 0 (taken out of argv by the C main) leave the arguments alone."""
    args = ("ternary", "info", TINY, weights, "-dont_show", "-i", "0")
    r = run_darknet(*args)
    rc, out, err = in_process(capfd, *args)
    assert rc == 0
    assert out == r.stdout
    assert out.startswith(f"{weights}: Darknet .weights, {os.path.getsize(weights)} bytes\n")
    assert "ternary weights: 0 (0.0% zeros)" in out


def test_errors_as_the_binary(capfd, tmp_path):
    missing = str(tmp_path / "missing.cfg")
    args = ("partial", missing, "w.weights", str(tmp_path / "out.weights"), "3")
    r = run_darknet(*args, check=False)
    rc, out, err = in_process(capfd, *args)
    assert r.returncode == rc == 1
    assert err == r.stderr and err.startswith("darknet: partial: ") and "missing.cfg" in err
    assert not (tmp_path / "out.weights").exists()


def test_repeated_calls_keep_python_signal_handlers(capfd, weights):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    outs = {in_process(capfd, "ternary", "info", TINY, weights)[1] for _ in range(3)}
    assert len(outs) == 1
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_cli_entry_point(capfd, monkeypatch):
    """darknet_py.cli.main: argv[0] is the script's name; Python's own
    output comes before the C code's."""
    assert cli.main([]) == 1
    assert capfd.readouterr().err.startswith("usage: darknet <command> ...")
    monkeypatch.setattr(sys, "argv", ["/some/bin/darknet", "nonsense"])
    print("python first")
    assert cli.main() == 1
    out, err = capfd.readouterr()
    assert out == "python first\n"
    assert err.startswith("Not an option: nonsense\nusage: darknet <command> ...")
    with pytest.raises(ValueError):
        _core.cli_main([])


# ---------------------------------------------------------------- pip (slow)

pip_only = pytest.mark.skipif(os.environ.get("DN_TEST_PIP") != "1",
                              reason="set DN_TEST_PIP=1 to build and pip install into fresh venvs (minutes)")

# What a previous build could leave behind: neither may reach a wheel.
STALE_MODULE = "stale_module_from_an_old_build"
STALE_CORE = "_core.cpython-39-x86_64-linux-gnu.so"


@pytest.fixture
def checkout(tmp_path):
    """This checkout's files as a fresh clone has them (tracked and new,
    not ignored ones) plus the leftovers of an in-place build: build/ and an
    extension built for another Python."""
    src = tmp_path / "src"
    try:
        files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    for f in files:
        if f and not f.startswith("runs/") and os.path.isfile(os.path.join(ROOT, f)):
            os.makedirs(os.path.dirname(src / f), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), src / f)
    lib = src / "build" / f"lib.{sysconfig.get_platform()}-{sys.implementation.cache_tag}" / "darknet_py"
    lib.mkdir(parents=True)
    (lib / f"{STALE_MODULE}.py").write_text("X = 1\n")
    (src / "darknet_py" / STALE_CORE).write_text("not a library\n")
    return src


def pip_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PIP_NO_BUILD_ISOLATION", "PIP_USER", "VIRTUAL_ENV")}
    env.setdefault("DARKNET_BUILD_JOBS", "2")
    return env


def venv(path):
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin"


def run(cmd, cwd):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=pip_env(), capture_output=True, text=True,
                          timeout=1800)


def pip(bindir, *args, cwd):
    r = run([bindir / "python", "-m", "pip", *args], cwd)
    assert r.returncode == 0, f"pip {' '.join(map(str, args))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"


def check_installed(bindir, elsewhere, weights, package_dir):
    """import from another folder, the two commands, and a real C command."""
    r = run([bindir / "python", "-c", "import darknet_py, darknet_py._core, darknet_py.cli; "
             "print(darknet_py.__file__); print(darknet_py._core.__file__)"], elsewhere)
    assert r.returncode == 0, r.stderr
    dirs = {os.path.realpath(os.path.dirname(f)) for f in r.stdout.splitlines()}
    assert dirs == {os.path.realpath(package_dir)}
    assert not os.path.exists(os.path.join(package_dir, f"{STALE_MODULE}.py"))
    r = run([bindir / "darknet"], elsewhere)
    assert r.returncode == 1 and r.stderr.startswith("usage: darknet <command> ...")
    assert "detector test <data> <cfg> <weights>" in r.stderr
    r = run([bindir / "darknet", "ternary", "info", TINY, weights], elsewhere)
    assert r.returncode == 0, r.stderr
    assert r.stdout == run_darknet("ternary", "info", TINY, weights).stdout
    r = run([bindir / "darknet-py", "--help"], elsewhere)
    assert r.returncode == 0 and r.stdout.startswith("usage: ") and "synth-voc" in r.stdout
    r = run([bindir / "darknet-py", "no-such-command"], elsewhere)
    assert r.returncode == 2 and "invalid choice" in r.stderr


@pip_only
def test_pip_install(checkout, tmp_path, weights):
    bindir = venv(tmp_path / "venv")
    pip(bindir, "install", checkout, cwd=tmp_path)
    site = run([bindir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               tmp_path).stdout.strip()
    check_installed(bindir, tmp_path, weights, os.path.join(site, "darknet_py"))
    assert not os.path.exists(os.path.join(site, "darknet_py", STALE_CORE))


@pip_only
def test_pip_install_editable(checkout, tmp_path, weights):
    bindir = venv(tmp_path / "venv")
    pip(bindir, "install", "-e", checkout, cwd=tmp_path)
    check_installed(bindir, tmp_path, weights, checkout / "darknet_py")


@pip_only
def test_pip_wheel(checkout, tmp_path):
    bindir = venv(tmp_path / "venv")
    pip(bindir, "wheel", "--no-deps", checkout, "-w", tmp_path / "wheels", cwd=tmp_path)
    wheels = os.listdir(tmp_path / "wheels")
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert len(wheels) == 1 and wheels[0].startswith(f"darknet_py-0.1.0-{tag}-{tag}-"), wheels
    names = zipfile.ZipFile(tmp_path / "wheels" / wheels[0]).namelist()
    core = [n for n in names if n.startswith("darknet_py/_core") and not n.endswith(".pyi")]
    assert core == [f"darknet_py/_core{sysconfig.get_config_var('EXT_SUFFIX')}"]
    assert "darknet_py/_core.pyi" in names and "darknet_py/py.typed" in names  # the stub ships
    assert "darknet_py/cli.py" in names and "darknet_py/__main__.py" in names
    assert not [n for n in names if STALE_MODULE in n or n.startswith(("tests/", "csrc/", "build/"))]
    entry = zipfile.ZipFile(tmp_path / "wheels" / wheels[0]).read(
        "darknet_py-0.1.0.dist-info/entry_points.txt").decode()
    assert "darknet = darknet_py.cli:main" in entry and "darknet-py = darknet_py.__main__:main" in entry
