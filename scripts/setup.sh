#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian/Ubuntu machine (OpenBLAS,
# stb, qemu-user for the portability test, Python packages), then builds ./darknet, libdarknet and darknet_py._core.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in build-essential pkg-config libopenblas-dev libstb-dev qemu-user; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! $PY -c "import numpy, pybind11, pytest, tqdm, matplotlib, cv2, onnx, onnxruntime" 2>/dev/null; then
    echo "setup: installing Python packages"
    $PY -m pip install -q -r requirements.txt
fi

make -j"$(nproc)" >/dev/null
# with the tests' kernel entry points (darknet_py._core.testing); an extension
# built without them (pip install -e) is rebuilt
force=""
$PY -c "import darknet_py._core as c; c.testing" 2>/dev/null || force="-f"
DARKNET_TEST_HOOKS=1 DARKNET_MARCH=native $PY setup.py -q build_ext --inplace -j "$(nproc)" $force
$PY -c "import darknet_py" # fails loudly if the extension did not build
echo "setup: built ./darknet and darknet_py"
