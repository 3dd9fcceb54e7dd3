#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer.
#   1. make SANITIZE=1: build/san/darknet and build/san/libdarknet.so (gcc);
#   2. darknet_py._core built with DARKNET_SANITIZE=1 into build/san/py/;
#   3. pytest with libasan preloaded into Python, the tests pointed at those
#      builds (DARKNET_PY_ROOT, DARKNET_BIN, DARKNET_LIB); every sanitizer
#      report is written to build/san/logs/ and fails the run;
#   4. LeakSanitizer over 100 load/forward/train-step/free cycles (and data
#      loader, weights/packed I/O, dn_train) in C: build/san/leak_cycle.
#      Python itself runs with leak detection off, as CPython keeps memory
#      at exit.
#   scripts/sanitize.sh [pytest args]      e.g. scripts/sanitize.sh tests/test_malformed.py
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
make -s -j2 SANITIZE=1
mkdir -p build/san/py/darknet_py build/san/logs
rm -f build/san/logs/*
DARKNET_SANITIZE=1 DARKNET_TEST_HOOKS=1 ${PYTHON:-python3} setup.py -q build_ext --build-lib build/san/py \
    --build-temp build/san/tmp --force -j 2
for f in darknet_py/*.py darknet_py/*.pyi darknet_py/py.typed; do
    [ -e "$f" ] && ln -sf "$ROOT/$f" "build/san/py/darknet_py/$(basename "$f")"
done
ln -sfn "$ROOT/cfg" build/san/py/cfg   # darknet_py finds the project cfgs next to the package
blas=$(echo 'int main(void){return 0;}' | cc -x c - -o /dev/null -lopenblas 2>/dev/null && echo -lopenblas || true)
cc -std=c11 -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -Icsrc/include \
    -o build/san/leak_cycle tests/leak_cycle.c build/san/libdarknet.a -lstb -lm -lpthread -fopenmp $blas

LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 ${PYTHON:-python3} -c \
    'import sys; sys.path.insert(0, "build/san/py"); import darknet_py._core as c; assert "build/san" in c.__file__'
export ASAN_OPTIONS="log_path=$ROOT/build/san/logs/asan:detect_leaks=0:abort_on_error=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="log_path=$ROOT/build/san/logs/ubsan:print_stacktrace=1"
export DARKNET_PY_ROOT=$ROOT/build/san/py DARKNET_BIN=$ROOT/build/san/darknet DARKNET_LIB=$ROOT/build/san/libdarknet.so
status=0
LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
    ${PYTHON:-python3} -m pytest -q -p no:cacheprovider "${@:-tests}" || status=$?

echo "== LeakSanitizer: tests/leak_cycle.c, 100 cycles"
export ASAN_OPTIONS="log_path=$ROOT/build/san/logs/asan:detect_leaks=1"
build/san/leak_cycle 100 || status=1

if ls build/san/logs/* >/dev/null 2>&1; then
    echo "sanitizer reports:"; head -n 40 build/san/logs/*; status=1
else
    echo "no sanitizer reports"
fi
exit $status
