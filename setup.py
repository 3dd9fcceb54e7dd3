"""Builds darknet_py._core (pybind11) from the same C sources as the Makefile
(csrc/sources.txt). Set DARKNET_GPU=1 for the CUDA build (see the CUDA issue),
DARKNET_SANITIZE=1 for an ASan+UBSan build (scripts/sanitize.sh builds it
outside the source tree)."""
import glob
import os
import subprocess

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))


def c_sources():
    with open(os.path.join(HERE, "csrc", "sources.txt")) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def have_openblas():
    probe = "#include <cblas.h>\nint main(void){return 0;}\n"
    r = subprocess.run(["cc", "-x", "c", "-", "-o", os.devnull, "-lopenblas"],
                       input=probe.encode(), capture_output=True)
    return r.returncode == 0


class BuildExt(build_ext):
    """Compile the C sources as C11 and the bindings as C++17."""

    def build_extensions(self):
        orig = self.compiler._compile

        def compile_one(obj, src, ext, cc_args, extra_postargs, pp_opts):
            if src.endswith(".c"):
                extra_postargs = [a for a in extra_postargs if not a.startswith("-std=c++")]
                extra_postargs = extra_postargs + ["-std=c11", "-D_GNU_SOURCE"]
            orig(obj, src, ext, cc_args, extra_postargs, pp_opts)

        self.compiler._compile = compile_one
        super().build_extensions()


blas = have_openblas() and os.environ.get("DARKNET_BLAS", "1") != "0"
if os.environ.get("DARKNET_GPU", "0") == "1":
    raise SystemExit("DARKNET_GPU=1: the CUDA backend is not implemented yet (see the CUDA issue)")

sanitize = os.environ.get("DARKNET_SANITIZE", "0") == "1"
san_flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"] if sanitize else []

ext = Pybind11Extension(
    "darknet_py._core",
    sorted(glob.glob("csrc/python/*.cpp")) + c_sources(),
    include_dirs=["csrc/include", "/usr/include/stb"],
    define_macros=[("DN_USE_BLAS", "1")] if blas else [],
    extra_compile_args=["-O3", "-march=native", "-fopenmp", "-Wall"] + san_flags,
    extra_link_args=["-fopenmp"] + san_flags[:1],
    libraries=["stb", "m"] + (["openblas"] if blas else []),
    cxx_std=17,
)

setup(
    name="darknet_py",
    version="0.1.0",
    description="Ternary-weight Darknet: YOLO training and inference with ternary convolutions",
    packages=["darknet_py"],
    package_data={"darknet_py": ["*.pyi", "py.typed"]},
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExt},
    install_requires=["numpy", "tqdm"],
    python_requires=">=3.9",
)
