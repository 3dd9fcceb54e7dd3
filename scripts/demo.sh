#!/usr/bin/env bash
# The main job on the embedded default data: set everything up, generate the
# synthetic VOC-format data set (5 shape classes), train a small YOLOv2 on it
# in full precision, ternarise it with the staged method (M0..M3) and the
# direct "no staged" baseline, validate every stage, print the table, and
# draw the full-ternary model's detections on a held-out image.
# About 5 minutes on two CPU cores. DEMO_OUT, FP_ITERS, STAGE_ITERS override.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${PYTHON:-python3}
OUT=${DEMO_OUT:-runs/demo}
CFG=cfg/yolov2-tiny-synth.cfg
mkdir -p "$OUT"
if [ ! -f "$OUT/synth/synth.data" ]; then
    $PY -m darknet_py synth-voc "$OUT/synth" --images 600 --classes 5 --size 160 --seed 0 --no-progress
fi
$PY -m darknet_py staged "$OUT/synth/synth.data" "$CFG" --fp-iterations "${FP_ITERS:-600}" \
    --iterations "${STAGE_ITERS:-100}" --out "$OUT/staged"
IMG=$(head -1 "$OUT/synth/2007_val.txt")
./darknet detector test "$OUT/synth/synth.data" "$OUT/staged/yolov2-tiny-synth_M3.cfg" \
    "$OUT/staged/M3/yolov2-tiny-synth_M3.minloss.weights" "$IMG" -thresh 0.3 -out "$OUT/predictions"
echo "demo: table in $OUT/staged/results.md; full-ternary detections drawn in $OUT/predictions.png"
