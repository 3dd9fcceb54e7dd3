#!/usr/bin/env bash
# Runs each libFuzzer target (fuzz/fuzz_*.c) for SECONDS (default 60), one
# after the other, starting from the committed seeds in fuzz/corpus/<target>
# plus what earlier runs found (build/fuzz/corpus/<target>). Crashes land in
# build/fuzz/crashes/; a summary line per target (executions, corpus size)
# is printed at the end. Installs clang and libFuzzer (Debian) if missing.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 60 cfg packed
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=${*:-cfg weights packed labels image}
if ! command -v clang-14 >/dev/null && ! command -v clang >/dev/null || \
   ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    apt-get install -y -q clang-14 libfuzzer-14-dev
fi
make -s -j2 fuzz-build
mkdir -p build/fuzz/crashes
summary=""
status=0
for t in $targets; do
    mkdir -p "build/fuzz/corpus/$t"
    log="build/fuzz/$t.log"
    echo "== fuzz_$t for ${secs}s (log: $log)"
    set +e
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "build/fuzz/fuzz_$t" "build/fuzz/corpus/$t" "fuzz/corpus/$t" -max_total_time="$secs" \
        -rss_limit_mb=3072 -max_len=16384 -timeout=20 -print_final_stats=1 \
        -artifact_prefix="build/fuzz/crashes/$t-" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    corpus=$(ls "build/fuzz/corpus/$t" | wc -l)
    line="fuzz_$t: ${secs}s, $execs executions, corpus $corpus, exit $rc"
    echo "$line"
    summary+="$line"$'\n'
    if [ $rc -ne 0 ]; then status=1; grep -m5 -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" || true; fi
done
printf '\n%s' "$summary"
exit $status
