#!/usr/bin/env bash
# The staged method on the VOC subset (../shared/data/voc-mini: 1000 train,
# 300 val images of VOC 2007, 20 classes) with a small YOLOv2
# (cfg/yolov2-tiny-voc-small.cfg, 224x224): full-precision training from
# scratch, then M0..M3 and the direct no-staged baseline, each validated on
# the val split; the table lands in $OUT/staged/results.md.
# VOC_MINI, OUT, FP_ITERS, STAGE_ITERS override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VOC=${VOC_MINI:-../shared/data/voc-mini}
OUT=${OUT:-runs/voc-mini}
mkdir -p "$OUT"
if [ ! -f "$OUT/voc/voc.data" ]; then
    $PY -m darknet_py voc-label "$VOC/VOCdevkit" "$OUT/voc" --no-progress
fi
$PY -m darknet_py staged "$OUT/voc/voc.data" cfg/yolov2-tiny-voc-small.cfg --fp-iterations "${FP_ITERS:-2000}" \
    --iterations "${STAGE_ITERS:-400}" --out "$OUT/staged" --seed 0 --no-progress
