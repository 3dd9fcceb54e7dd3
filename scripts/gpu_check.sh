#!/usr/bin/env bash
# The GPU checks in one go, for a machine with a CUDA device (about 5-8
# minutes on one H100): build ./darknet and the Python extension with the
# CUDA backend, run tests/test_gpu.py (every layer GPU vs CPU, the device
# TWN quantiser vs the host one, loss curves, the staged miniature run, two
# GPUs when present) and bench/bench_gpu.py (yolov2-voc and yolov2-tiny-voc
# training images/s at 416, float vs all-ternary).
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
{
    echo "== gpu_check $(date -u +%FT%TZ) on $(hostname)"
    nvidia-smi -L 2>&1 || echo "nvidia-smi not found"
    NVCC=${NVCC:-$(command -v nvcc || echo ${CUDA_PATH:-/usr/local/cuda}/bin/nvcc)}
    if [ -x "$NVCC" ]; then
        echo "== build with $NVCC"
        make -j"$JOBS" GPU=1 > "$OUT/build.txt" 2>&1 || { echo "make GPU=1 failed:"; tail -30 "$OUT/build.txt"; exit 1; }
        DARKNET_GPU=1 $PY setup.py -q build_ext --inplace -j "$JOBS" >> "$OUT/build.txt" 2>&1 \
            || { echo "DARKNET_GPU=1 build_ext failed:"; tail -30 "$OUT/build.txt"; exit 1; }
        echo "built (cuBLAS: $(grep -c DN_USE_CUBLAS "$OUT/build.txt" | sed 's/^0$/no, built-in GEMM/;s/^[1-9][0-9]*$/yes/'))"
    else
        echo "== no nvcc: using the prebuilt ./darknet and darknet_py/_core"
    fi
    $PY -c "from darknet_py import _core; print('CUDA build:', _core.cuda_compiled(), 'devices:', _core.cuda_device_count())"
    echo "== tests/test_gpu.py"
    $PY -m pytest -q -rs tests/test_gpu.py
    TESTS=$?
    if [ "${SKIP_BENCH:-0}" != 1 ]; then
        echo "== bench/bench_gpu.py"
        $PY bench/bench_gpu.py --json "$OUT/bench_gpu.json"
    fi
    echo "== done: test_gpu.py exit status $TESTS"
    exit $TESTS
} 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
