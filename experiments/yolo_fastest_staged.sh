#!/usr/bin/env bash
# The staged method on a real pretrained detector: Yolo-Fastest VOC (AlexeyAB's
# format, depthwise-separable, 85 conv layers, 320x320) fine-tuned on VOC 2007
# trainval and scored on VOC 2007 test.txt only. Per seed: FP as given, FP
# fine-tuned as long as all the stages, M0..M3 and the direct full-ternary
# baseline at equal total iterations; then $OUT/results.json (one row per
# trained model and seed) and $OUT/results.md (mean and spread over seeds).
# Resumable: run it again and finished runs are kept, a stopped one resumes.
# Env: VOC_ROOT, MODEL_DIR, OUT, STAGE_ITERS (batches per stage), SEEDS,
# LR (learning rate of every run), BATCH, PLAN, THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VOC_ROOT=${VOC_ROOT:-../shared/data/voc2007}
MODEL_DIR=${MODEL_DIR:-../shared/models/yolo-fastest}
OUT=${OUT:-runs/yolo-fastest-staged}
STAGE_ITERS=${STAGE_ITERS:-500}
SEEDS=${SEEDS:-"0 1 2"}
LR=${LR:-0.0001}
BATCH=${BATCH:-16}
PLAN=${PLAN:-sensitivity}
mkdir -p "$OUT"
DATA="$OUT/voc/voc.data"   # train = 2007 train + val (trainval), valid = 2007 test.txt
[ -f "$DATA" ] || $PY -m darknet_py voc-label "$VOC_ROOT/VOCdevkit" "$OUT/voc" --sets train val test --no-progress
for seed in $SEEDS; do
    $PY -m darknet_py staged "$DATA" "$MODEL_DIR/yolo-fastest-voc.cfg" "$MODEL_DIR/yolo-fastest-voc.weights" \
        --plan "$PLAN" --iterations "$STAGE_ITERS" --learning-rate "$LR" --batch "$BATCH" --subdivisions 1 \
        --fp-reference --out "$OUT/seed$seed" --seed "$seed" ${THREADS:+--threads "$THREADS"} --no-progress
done
$PY - "$OUT" "$MODEL_DIR/yolo-fastest-voc.cfg" $SEEDS <<'PYEOF'
import json, os, statistics, sys
from darknet_py.stages import sensitivity_table
out, cfg, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
for s in seeds:
    try:
        for r in json.load(open(f"{out}/seed{s}/results.json")):
            rows.append(dict(r, seed=int(s)))
    except FileNotFoundError:
        pass
json.dump(rows, open(f"{out}/results.json", "w"), indent=1)
lines = ["| Stage | ternary layers | mAP (mean ± spread over seeds) | IoU | seeds | .weights | packed |",
         "|-|-|-|-|-|-|-|"]
for stage in dict.fromkeys(r["stage"] for r in rows):
    rs = [r for r in rows if r["stage"] == stage]
    m = [100 * r["map"] for r in rs]
    spread = f" ± {statistics.pstdev(m):.2f}" if len(m) > 1 else ""
    lines.append(f"| {stage} | {rs[0]['ternary_layers']}/{rs[0]['conv_layers']} | {statistics.mean(m):.2f}{spread} | "
                 f"{100 * statistics.mean(r['iou'] for r in rs):.2f} | {len(rs)} | "
                 f"{rs[0]['weights_bytes'] / 1e6:.2f} MB | {rs[0]['packed_bytes'] / 1e6:.3f} MB |")
sens = f"{out}/seed{seeds[0]}/sensitivity.json"
if os.path.exists(sens):
    s = json.load(open(sens))
    drops = [s["base"] - s["maps"][str(k)] for k in range(len(s["maps"]))]
    lines += ["", f"Sensitivity (mAP points lost with one conv layer ternary, on 200 training images; "
              f"float {100 * s['base']:.2f}):", "", sensitivity_table(cfg, drops)]
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
