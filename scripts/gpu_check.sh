#!/usr/bin/env bash
# The GPU checks in one go, for a machine with a CUDA device (about 5-8
# minutes on one H100): build ./darknet and the Python extension with the
# CUDA backend (with cuDNN when cudnn.h is found: CUDNN_DIR, CUDA_PATH, /usr
# or pip's nvidia-cudnn package), run tests/test_gpu.py (every layer GPU vs
# CPU, the device TWN quantiser vs the host one, loss curves, the staged
# miniature run, two GPUs when present; with cuDNN, the conv layers once
# more without it) and bench/bench_gpu.py (yolov2-voc and yolov2-tiny-voc
# training images/s at 416, float vs all-ternary, with cuDNN's workspace
# limit at its default of 1024 MB and at 0, the im2col buffer).
#
# Without stb on the machine (the device tool's image has none) it builds
# against .gpu_deps/usr: run scripts/gpu_deps.sh here first and carry
# .gpu_deps. The kernels are built for the device's own architecture, and
# the emulator test is skipped (CI runs it).
#
# Everything goes to $OUT/gpu_check.txt (OUT defaults to ./gpu_check_out)
# and the benchmark rows to $OUT/bench_gpu.json. Without nvcc on the machine
# the build step is skipped and the extension/binary already in the tree
# (built elsewhere with `make GPU=1` and `DARKNET_GPU=1 python3 setup.py
# build_ext --inplace`) are used. SKIP_BENCH=1 skips the benchmark.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.txt"
PY=${PYTHON:-python3}
JOBS=$(nproc 2>/dev/null || echo 2)
export DARKNET_SKIP_EMU=1
if [ ! -f /usr/include/stb/stb_image.h ] && [ -f .gpu_deps/usr/include/stb/stb_image.h ]; then
    export STB_PREFIX=$PWD/.gpu_deps/usr
fi
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
if [ -n "$cap" ] && [ -z "${NVCC_ARCH:-}" ]; then export NVCC_ARCH="-gencode arch=compute_$cap,code=sm_$cap"; fi
{
    echo "== gpu_check $(date -u +%FT%TZ) on $(hostname)"
    nvidia-smi -L 2>&1 || echo "nvidia-smi not found"
    NVCC=${NVCC:-$(command -v nvcc || echo ${CUDA_PATH:-/usr/local/cuda}/bin/nvcc)}
    if [ -x "$NVCC" ]; then
        # the toolkit nvcc belongs to (nvcc may be a wrapper outside it)
        top=$("$NVCC" -dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)
        export NVCC CUDA_PATH=${CUDA_PATH:-$(cd "${top:-/usr/local/cuda}" && pwd)}
        export CUDNN=0
        for d in "${CUDNN_DIR:-}" "${CUDA_PATH:-/usr/local/cuda}" /usr \
                 "$($PY -c 'import nvidia.cudnn as c; print(list(c.__path__)[0])' 2>/dev/null)"; do
            if [ -n "$d" ] && [ -f "$d/include/cudnn.h" ]; then export CUDNN=1 CUDNN_DIR=$d; break; fi
        done
        echo "== build with $NVCC ($CUDA_PATH, ${NVCC_ARCH:-default archs}; cuDNN: ${CUDNN_DIR:-not found}; stb: ${STB_PREFIX:-/usr})"
        build() {
            if command -v make > /dev/null; then make -j"$JOBS" GPU=1 CUDNN=$CUDNN || return 1
            else echo "no make: ./darknet is not built (its tests skip)"; fi
            DARKNET_GPU=1 DARKNET_TEST_HOOKS=1 $PY setup.py -q build_ext --inplace -j "$JOBS"
        }
        ok=1
        build > "$OUT/build.txt" 2>&1 || ok=0
        if [ $ok = 0 ] && [ "$CUDNN" = 1 ]; then
            echo "the build with cuDNN failed, building without it:"; tail -20 "$OUT/build.txt"
            export CUDNN=0
            ok=1
            build > "$OUT/build.txt" 2>&1 || ok=0
        fi
        [ $ok = 1 ] || { echo "the CUDA build failed:"; tail -30 "$OUT/build.txt"; exit 1; }
        echo "built (cuBLAS: $(grep -c DN_USE_CUBLAS "$OUT/build.txt" | sed 's/^0$/no, built-in GEMM/;s/^[1-9][0-9]*$/yes/'), cuDNN: $CUDNN)"
        export DARKNET_EXPECT_CUDNN=$CUDNN
    else
        echo "== no nvcc: using the prebuilt ./darknet and darknet_py/_core"
    fi
    $PY -c "from darknet_py import _core; print('CUDA build:', _core.cuda_compiled(), 'devices:', _core.cuda_device_count())"
    echo "== tests/test_gpu.py"
    $PY -m pytest -q -rs tests/test_gpu.py
    TESTS=$?
    if [ "${CUDNN:-0}" = 1 ]; then
        echo "== tests/test_gpu.py, conv layers without cuDNN (DARKNET_CUDNN=0)"
        DARKNET_CUDNN=0 $PY -m pytest -q -rs tests/test_gpu.py -k "layer_forward or resize or loss_curve" || TESTS=1
    fi
    if [ "${SKIP_BENCH:-0}" != 1 ]; then
        echo "== bench/bench_gpu.py"
        $PY bench/bench_gpu.py --limits cfg 0 --json "$OUT/bench_gpu.json"
    fi
    echo "== done: test_gpu.py exit status $TESTS"
    exit $TESTS
} 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
