"""Builds darknet_py._core (pybind11) from the same C sources as the Makefile
(csrc/sources.txt). DARKNET_GPU=1 adds the CUDA backend (csrc/sources_gpu.txt,
the list the Makefile's GPU=1 reads): the .cu kernels are compiled with nvcc
(CUDA_PATH, default /usr/local/cuda; NVCC_ARCH the -gencode list) and cuBLAS
is used when cublas_v2.h is found in CUBLAS_DIR (default CUDA_PATH) unless
CUBLAS=0; CUDNN=1 runs the convolutions on cuDNN (CUDNN_DIR, default
CUDA_PATH: include/cudnn.h and lib64/ or lib/libcudnn.so*). DARKNET_GPU=emu
builds the same backend against the CPU emulator of csrc/kernels/cuda/emu
(the .cu files compiled as C++, no CUDA needed; with its cuDNN subset unless
CUDNN=0): for testing the backend's logic where there is no GPU.
DARKNET_MARCH is the -march of the C and C++ files: x86-64-v2 (default:
a wheel that runs on any x86-64 CPU with SSE4.2; the float kernels of
csrc/kernels/cpu/isa/ and the ternary kernels pick AVX2, AVX-512 and VNNI
at run time) or native (this machine only; scripts/setup.sh builds so).
DARKNET_TEST_HOOKS=1 adds darknet_py._core.testing, the kernel entry points
of the tests and benchmarks (scripts/setup.sh builds with it; a pip install
does not). DARKNET_SANITIZE=1 builds with ASan+UBSan (scripts/sanitize.sh builds it
outside the source tree).

The metadata (name, version, dependencies, the `darknet` and `darknet-py`
commands) are in pyproject.toml, for pip install / pip wheel; this file is
the build. The command line of csrc/cli goes into the extension with
DN_NO_MAIN (_core.cli_main). Sources compile DARKNET_BUILD_JOBS at a time
(default: all CPUs). An in-place build (build_ext --inplace, pip install -e)
replaces darknet_py/_core*.so by a rename, never by writing into it, since a
running process may have the old one mapped."""
import glob
import os
import shutil
import subprocess

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup
from setuptools.command.build import build

HERE = os.path.dirname(os.path.abspath(__file__))


def source_list(name):
    with open(os.path.join(HERE, "csrc", name)) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def c_sources():
    return source_list("sources.txt")


EMU = os.environ.get("DARKNET_GPU", "0") == "emu"
GPU = os.environ.get("DARKNET_GPU", "0") == "1" or EMU
CUDA_PATH = os.environ.get("CUDA_PATH", "/usr/local/cuda")
NVCC = os.environ.get("NVCC", os.path.join(CUDA_PATH, "bin", "nvcc"))
NVCC_ARCH = os.environ.get("NVCC_ARCH", "-gencode arch=compute_75,code=compute_75 "
                           "-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90").split()
CUBLAS_DIR = os.environ.get("CUBLAS_DIR", CUDA_PATH)
CUBLAS = os.environ.get("CUBLAS", "1" if os.path.exists(os.path.join(CUBLAS_DIR, "include", "cublas_v2.h"))
                        else "0") == "1"
CUDNN_DIR = os.environ.get("CUDNN_DIR", CUDA_PATH)
CUDNN = GPU and os.environ.get("CUDNN", "1" if EMU else "0") == "1"
if GPU and not EMU and not os.path.exists(NVCC):
    raise SystemExit(f"DARKNET_GPU=1: nvcc not found at {NVCC}; install the CUDA toolkit or set CUDA_PATH/NVCC")


def cudnn_library():
    """libcudnn under CUDNN_DIR: the unversioned .so, else the versioned one (pip's wheels)."""
    if not os.path.exists(os.path.join(CUDNN_DIR, "include", "cudnn.h")):
        raise SystemExit(f"CUDNN=1: cudnn.h not found in {CUDNN_DIR}/include; install cuDNN or set CUDNN_DIR")
    for d in ("lib64", "lib", "lib/x86_64-linux-gnu"):
        for pattern in ("libcudnn.so", "libcudnn.so.[0-9]*"):
            found = sorted(glob.glob(os.path.join(CUDNN_DIR, d, pattern)))
            if found:
                return found[0]
    raise SystemExit(f"CUDNN=1: libcudnn.so not found under {CUDNN_DIR}/lib64 or {CUDNN_DIR}/lib")


def have_openblas():
    probe = "#include <cblas.h>\nint main(void){return 0;}\n"
    r = subprocess.run(["cc", "-x", "c", "-", "-o", os.devnull, "-lopenblas"],
                       input=probe.encode(), capture_output=True)
    return r.returncode == 0


class Build(build):
    """A fresh build/lib* for each package build: files left there by older
    builds (a module since removed) would otherwise go into the wheel."""

    def run(self):
        if os.path.realpath(self.build_lib).startswith(os.path.realpath(os.path.join(HERE, "build")) + os.sep):
            shutil.rmtree(self.build_lib, ignore_errors=True)
        super().run()


class BuildExt(build_ext):
    """Compile the C sources as C11 and the bindings as C++17."""

    def copy_file(self, infile, outfile, *args, **kwargs):
        """Copy the built library in place (--inplace, editable installs)
        under a temporary name, then rename it over the old one."""
        tmp = f"{outfile}.tmp{os.getpid()}"
        try:
            super().copy_file(infile, tmp, *args, **kwargs)
            os.replace(tmp, outfile)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return outfile, 1

    def build_extensions(self):
        orig = self.compiler._compile

        def compile_one(obj, src, ext, cc_args, extra_postargs, pp_opts):
            if src.endswith(".c"):
                extra_postargs = [a for a in extra_postargs if not a.startswith("-std=c++")]
                extra_postargs = extra_postargs + ["-std=c11", "-D_GNU_SOURCE"]
            orig(obj, src, ext, cc_args, extra_postargs, pp_opts)

        self.compiler._compile = compile_one
        if GPU:
            self.compile_cuda()
        super().build_extensions()

    def compile_cuda(self):
        """nvcc each .cu of csrc/sources_gpu.txt into build_temp; link the objects."""
        flags = ["-std=c++14", "-O3", *NVCC_ARCH, "-Xcompiler", "-fPIC", "-Icsrc/include"]
        if EMU:
            return self.compile_emulated()
        if CUBLAS:
            flags += ["-DDN_USE_CUBLAS", "-I" + os.path.join(CUBLAS_DIR, "include")]
        if CUDNN:
            flags += ["-DDN_USE_CUDNN", "-I" + os.path.join(CUDNN_DIR, "include")]
        for ext in self.extensions:
            for src in [s for s in source_list("sources_gpu.txt") if s.endswith(".cu")]:
                obj = os.path.join(self.build_temp, src + ".cublas" * CUBLAS + ".cudnn" * CUDNN + ".o")
                os.makedirs(os.path.dirname(obj), exist_ok=True)
                deps = [src] + glob.glob("csrc/kernels/cuda/*.h") + glob.glob("csrc/kernels/cuda/*.cuh")
                if not os.path.exists(obj) or os.path.getmtime(obj) < max(os.path.getmtime(d) for d in deps):
                    subprocess.check_call([NVCC, *flags, "-c", src, "-o", obj])
                ext.extra_objects.append(obj)
                ext.depends.append(obj)  # relink when an object changed

    def compile_emulated(self):
        """The .cu files as C++ against the emulator, plus its runtime."""
        cxx = os.environ.get("CXX", "c++")
        flags = ["-std=c++17", "-O2", "-fPIC", "-Wall", "-Wno-unknown-pragmas", "-DDN_CUDA_EMU",
                 "-Icsrc/include", "-Icsrc/kernels/cuda/emu"] + ["-DDN_USE_CUDNN"] * CUDNN
        srcs = [s for s in source_list("sources_gpu.txt") if s.endswith(".cu")] + EMU_SOURCES
        for ext in self.extensions:
            for src in srcs:
                obj = os.path.join(self.build_temp, src + ".emu" + ".cudnn" * CUDNN + ".o")
                os.makedirs(os.path.dirname(obj), exist_ok=True)
                deps = [src] + glob.glob("csrc/kernels/cuda/*.h") + glob.glob("csrc/kernels/cuda/*.cuh") \
                    + glob.glob("csrc/kernels/cuda/emu/*")
                if not os.path.exists(obj) or os.path.getmtime(obj) < max(os.path.getmtime(d) for d in deps):
                    pre = [] if src in EMU_SOURCES else ["-x", "c++", "-include", EMU_HEADER]
                    subprocess.check_call([cxx, *flags, *pre, "-c", src, "-o", obj])
                ext.extra_objects.append(obj)
                ext.depends.append(obj)  # relink when an object changed


EMU_HEADER = "csrc/kernels/cuda/emu/cuda_emu.h"
EMU_SOURCES = ["csrc/kernels/cuda/emu/runtime.cpp", "csrc/kernels/cuda/emu/cudnn.cpp"]
blas = have_openblas() and os.environ.get("DARKNET_BLAS", "1") != "0"
gpu_c = [s for s in source_list("sources_gpu.txt") if s.endswith(".c")] if GPU else []
gpu_libs, gpu_lib_dirs, gpu_inc, gpu_link = [], [], [], []
if GPU and EMU:
    gpu_libs, gpu_inc = ["stdc++", "pthread"], ["csrc/kernels/cuda/emu"]
elif GPU:
    gpu_libs = ["cudart_static", "dl", "rt"] + (["cublas"] if CUBLAS else [])
    gpu_lib_dirs = [os.path.join(CUDA_PATH, "lib64")] + (
        [os.path.join(CUBLAS_DIR, "lib64"), os.path.join(CUBLAS_DIR, "lib")] if CUBLAS else [])
    gpu_inc = [os.path.join(CUDA_PATH, "include")]
    if CUDNN:
        lib = cudnn_library()
        gpu_link = [lib, "-Wl,-rpath," + os.path.dirname(lib)]

# STB_PREFIX: a usr/ folder with stb's headers and library where the system has none (as in the Makefile)
STB = os.environ.get("STB_PREFIX", "/usr")
stb_lib = [os.path.join(os.path.abspath(STB), "lib", "x86_64-linux-gnu")] if "STB_PREFIX" in os.environ else []

sanitize = os.environ.get("DARKNET_SANITIZE", "0") == "1"
san_flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"] if sanitize else []

ParallelCompile("DARKNET_BUILD_JOBS", default=0).install()
# the CLI as the Makefile globs it (CLI_SRCS), without its main()
cli_c = sorted(glob.glob("csrc/cli/*.c"))
ext = Pybind11Extension(
    "darknet_py._core",
    sorted(glob.glob("csrc/python/*.cpp")) + c_sources() + gpu_c + cli_c,
    include_dirs=gpu_inc + ["csrc/include", os.path.join(STB, "include", "stb")],
    # headers, and the kernel files the per-level wrappers of kernels/cpu/isa/ include
    depends=sorted(glob.glob("csrc/**/*.h", recursive=True) + glob.glob("csrc/kernels/cpu/*.c")),
    define_macros=[("DN_NO_MAIN", None)] + ([("DN_USE_BLAS", "1")] if blas else [])
    + ([("DN_GPU", "1")] if GPU else [])
    + ([("DN_TEST_HOOKS", "1")] if os.environ.get("DARKNET_TEST_HOOKS", "0") == "1" else []),
    # -fno-wrapv: Python's own CFLAGS carry -fwrapv, which costs some kernels
    extra_compile_args=["-O3", "-march=" + os.environ.get("DARKNET_MARCH", "x86-64-v2"), "-fopenmp", "-fno-wrapv",
                        "-Wall", "-Wno-psabi"] + san_flags,  # -Wno-psabi: see the Makefile
    extra_link_args=["-fopenmp"] + san_flags[:1] + gpu_link,
    libraries=["stb", "m"] + (["openblas"] if blas else []) + gpu_libs,
    library_dirs=gpu_lib_dirs + stb_lib,
    runtime_library_dirs=stb_lib,
    cxx_std=17,
)

# the package and its files are named here, not in pyproject.toml's
# [tool.setuptools], which older setuptools (65) warn about as beta
setup(packages=["darknet_py"], package_data={"darknet_py": ["*.pyi", "py.typed"]},
      ext_modules=[ext], cmdclass={"build": Build, "build_ext": BuildExt})
