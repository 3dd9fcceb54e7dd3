#!/usr/bin/env bash
# Fine-tuning a real pretrained detector (Yolo-Fastest VOC, AlexeyAB's
# format) on VOC 2007 trainval and scoring it on VOC 2007 test.txt, as a new
# user would: `detector train data cfg weights -clear` with batch 16, then
# `detector map` (area AP) on the final weights. Rows: the model as given;
# learning rate 0 for 2 iterations; the cfg's own schedule (burn_in 4000, so
# a tiny rate) for 100; rate 0.0005 without burn-in for 100 and 300.
# Writes $OUT/finetune.md. Env: DARKNET (the binary, default ./darknet: point
# it at another build to compare), VOC_ROOT, MODEL_DIR, OUT, SEED, ROWS.
set -euo pipefail
cd "$(dirname "$0")/.."
DARKNET=${DARKNET:-./darknet}
VOC_ROOT=${VOC_ROOT:-../shared/data/voc2007}
MODEL_DIR=${MODEL_DIR:-../shared/models/yolo-fastest}
OUT=${OUT:-runs/finetune}
SEED=${SEED:-0}
mkdir -p "$OUT"
DATA="$OUT/voc/voc.data"
[ -f "$DATA" ] || python3 -m darknet_py voc-label "$VOC_ROOT/VOCdevkit" "$OUT/voc" --sets train val test --no-progress
CFG="$MODEL_DIR/yolo-fastest-voc.cfg"
W="$MODEL_DIR/yolo-fastest-voc.weights"

map_of() { # cfg weights -> mAP in percent
    "$DARKNET" detector map "$DATA" "$1" "$2" -quiet 2>/dev/null | sed -n 's/.*(mAP@0.50) = [0-9.]*, or \([0-9.]*\) %.*/\1/p'
}

# name learning_rate burn_in iterations
ROWS=${ROWS:-"rate0 0 0 2
schedule cfg cfg 100
lr0.0005 0.0005 0 100
lr0.0005x300 0.0005 0 300"}
base=$(map_of "$CFG" "$W")
{
    echo "| run | learning rate | burn_in | iterations | mAP | change |"
    echo "|---|---|---|---|---|---|"
    echo "| pretrained, as given | | | 0 | $base | |"
} > "$OUT/finetune.md"
while read -r name lr burn iters; do
    [ -n "$name" ] || continue
    dir="$OUT/$name"
    mkdir -p "$dir"
    cfg="$dir/yolo-fastest-voc.cfg"
    sed -e 's/^batch=.*/batch=16/' -e 's/^subdivisions=.*/subdivisions=1/' "$CFG" > "$cfg"
    [ "$lr" = cfg ] || sed -i -e "s/^learning_rate=.*/learning_rate=$lr/" -e "s/^burn_in=.*/burn_in=$burn/" "$cfg"
    "$DARKNET" detector train "$DATA" "$cfg" "$W" -clear -max_batches "$iters" -backup "$dir" -seed "$SEED" \
        > "$dir/train.log" 2>&1
    m=$(map_of "$cfg" "$dir/yolo-fastest-voc_final.weights")
    lr_shown=$([ "$lr" = cfg ] && echo "cfg (0.001)" || echo "$lr")
    burn_shown=$([ "$burn" = cfg ] && echo "cfg (4000)" || echo "$burn")
    echo "| $name | $lr_shown | $burn_shown | $iters | $m | $(python3 -c "print(f'{$m - $base:+.2f}')") |" >> "$OUT/finetune.md"
done <<< "$ROWS"
cat "$OUT/finetune.md"
