#!/usr/bin/env bash
# The staged method on a real pretrained detector: Yolo-Fastest VOC (AlexeyAB's
# format, depthwise-separable, 85 conv layers, 320x320) fine-tuned on VOC 2007
# trainval and scored on VOC 2007 test.txt only. Per seed: FP as given, FP
# fine-tuned as long as all the stages, M0..M3 and the direct full-ternary
# baseline at equal total iterations; then $OUT/results.json (one row per
# trained model and seed) and $OUT/results.md (mean and spread over seeds).
# Resumable: run it again and finished runs are kept, a stopped one resumes.
# Env: VOC_ROOT, MODEL_DIR, CFG, WEIGHTS, OUT, STAGE_ITERS (batches per
# stage), SEEDS, LR (learning rate of every run), BATCH, PLAN, THREADS, NAMES
# (a .names file for a devkit with other classes than VOC's), and
# STAGED_OPTS (more `python -m darknet_py staged` options, e.g.
# "--keep-float depthwise first detector" or "--distill 0").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VOC_ROOT=${VOC_ROOT:-../shared/data/voc2007}
MODEL_DIR=${MODEL_DIR:-../shared/models/yolo-fastest}
CFG=${CFG:-$MODEL_DIR/yolo-fastest-voc.cfg}
WEIGHTS=${WEIGHTS:-$MODEL_DIR/yolo-fastest-voc.weights}
OUT=${OUT:-runs/yolo-fastest-staged}
STAGE_ITERS=${STAGE_ITERS:-500}
SEEDS=${SEEDS:-"0 1 2"}
LR=${LR:-0.0001}
BATCH=${BATCH:-16}
PLAN=${PLAN:-sensitivity}
mkdir -p "$OUT"
DATA="$OUT/voc/voc.data"   # train = 2007 train + val (trainval), valid = 2007 test.txt
[ -f "$DATA" ] || $PY -m darknet_py voc-label "$VOC_ROOT/VOCdevkit" "$OUT/voc" --sets train val test --no-progress \
    ${NAMES:+--names "$NAMES"}
first=""
for seed in $SEEDS; do
    # the sensitivities do not depend on the seed: measured once, copied
    mkdir -p "$OUT/seed$seed"
    if [ -n "$first" ] && [ -f "$OUT/seed$first/sensitivity.json" ] && [ ! -f "$OUT/seed$seed/sensitivity.json" ]; then
        cp "$OUT/seed$first/sensitivity.json" "$OUT/seed$seed/sensitivity.json"
    fi
    first=${first:-$seed}
    # shellcheck disable=SC2086
    $PY -m darknet_py staged "$DATA" "$CFG" "$WEIGHTS" --plan "$PLAN" --iterations "$STAGE_ITERS" \
        --learning-rate "$LR" --batch "$BATCH" --subdivisions 1 --fp-reference --out "$OUT/seed$seed" \
        --seed "$seed" ${THREADS:+--threads "$THREADS"} --no-progress ${STAGED_OPTS:-}
done
$PY - "$OUT" "$CFG" $SEEDS <<'PYEOF'
import json, os, sys
from darknet_py.staged import table
from darknet_py.stages import sensitivity_table
out, cfg, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [dict(r, seed=int(s)) for s in seeds for r in json.load(open(f"{out}/seed{s}/results.json"))]
json.dump(rows, open(f"{out}/results.json", "w"), indent=1)
lines = [table(rows)]
sens = f"{out}/seed{seeds[0]}/sensitivity.json"
if os.path.exists(sens):
    s = json.load(open(sens))
    drops = [s["base"] - s["maps"][str(k)] for k in range(len(s["maps"]))]
    lines += ["", f"Sensitivity (mAP points lost with one conv layer ternary, on 200 training images; "
              f"float {100 * s['base']:.2f}):", "", sensitivity_table(cfg, drops)]
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
