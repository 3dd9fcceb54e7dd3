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
# a build with the test hooks has the submodule testing: the stub describes
# the module a pip install gives, without it
src="$tmp/darknet_py/_core.pyi"
[ -f "$src" ] || src="$tmp/darknet_py/_core/__init__.pyi"
$PY - "$src" darknet_py/_core.pyi <<'PYEOF'
import re, sys
s = open(sys.argv[1]).read()
s = re.sub(r"^from \. import testing\n", "", s, flags=re.M)
s = s.replace("'testing', ", "").replace(", 'testing'", "")
open(sys.argv[2], "w").write(s)
PYEOF
rm -rf "$tmp"
echo "written darknet_py/_core.pyi"
