#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and runs the whole test suite.
# Where nvcc is installed, the cuDNN headers and library stub of pip's
# nvidia-cudnn wheel (for the CUDA major version of nvcc) are unpacked into
# build/cudnn once, so the suite also checks the cuDNN path against the real
# API; without them that check is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${PYTHON:-python3}
NVCC=$(command -v nvcc || echo "${CUDA_PATH:-/usr/local/cuda}/bin/nvcc")
CUDNN_INC=build/cudnn/nvidia/cudnn/include/cudnn.h
if [ -x "$NVCC" ] && [ ! -f "$CUDNN_INC" ]; then
    cuda=$("$NVCC" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
    tmp=$(mktemp -d)
    if $PY -m pip download -q --no-deps -d "$tmp" "nvidia-cudnn-cu$cuda" 2>/dev/null; then
        $PY -c 'import glob, re, sys, zipfile
z = zipfile.ZipFile(glob.glob(sys.argv[1] + "/nvidia_cudnn_*.whl")[0])
z.extractall("build/cudnn", [n for n in z.namelist() if re.match(r"nvidia/cudnn/(include/|lib/libcudnn\.so)", n)])' \
            "$tmp" || echo "test: could not unpack the cuDNN wheel; the cuDNN API check will be skipped"
    else
        echo "test: nvidia-cudnn-cu$cuda not available; the cuDNN API check will be skipped"
    fi
    rm -rf "$tmp"
fi
exec $PY -m pytest -q tests "$@"
