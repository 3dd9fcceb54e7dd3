#!/usr/bin/env bash
# The main job on the embedded default data: set everything up, generate the
# synthetic VOC-format data set, and run detection with ./darknet and Python.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${PYTHON:-python3}
OUT=${DEMO_OUT:-runs/demo}
mkdir -p "$OUT"
$PY -m darknet_py synth-voc "$OUT/synth" --images 40 --classes 5 --size 224 --seed 0 --no-progress
IMG=$(head -1 "$OUT/synth/2007_val.txt")
$PY - "$OUT" <<'PY'
import sys, darknet_py as dn
net = dn.Network("cfg/yolov2-tiny-voc-small.cfg", seed=1)
net.save_weights(f"{sys.argv[1]}/random.weights")
print(net.summary())
PY
./darknet detector test cfg/voc.data cfg/yolov2-tiny-voc-small.cfg "$OUT/random.weights" "$IMG" \
    -thresh 0.3 -out "$OUT/predictions"
echo "demo: wrote $OUT/predictions.png (random weights: boxes are meaningless until trained)"
