#!/usr/bin/env bash
# Regenerates darknet_py/_core.pyi, the type stub of the extension, from the
# built module (pybind11-stubgen, a development tool installed on demand).
# tests/test_stub.py fails when the stub and the module disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -c "import pybind11_stubgen" 2>/dev/null || $PY -m pip install -q pybind11-stubgen
tmp=$(mktemp -d)
PYTHONPATH=. $PY -m pybind11_stubgen darknet_py._core -o "$tmp"
mv "$tmp/darknet_py/_core.pyi" darknet_py/_core.pyi
rm -rf "$tmp"
echo "written darknet_py/_core.pyi"
