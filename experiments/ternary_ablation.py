"""Ablation of the ternary training options at equal budget on Yolo-Fastest
VOC: one stage that makes the sensitivity plan's stage-K layers ternary (K=1:
the 34 least sensitive conv layers), trained from the pretrained weights
for the same iterations in every variant, scored on the .data file's valid
list. Each variant changes one thing against the base recipe (per-filter
alphas, lr 1e-4, batch-norm re-estimation at the end, no averaging, no
distillation). Resumable (finished variants are kept); writes OUT/ablation.md
and OUT/ablation.json.

    python experiments/ternary_ablation.py DATA OUT [--iterations 200] [--seeds 0 1]
        [--variants base layer-scale ...] [--sensitivity experiments/results/.../sensitivity.json]

DATA: a voc.data from `python -m darknet_py voc-label` (train = VOC 2007
trainval, valid = test.txt)."""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from darknet_py.staged import staged_train  # noqa: E402
from darknet_py.stages import sensitivity_plan  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {  # name: (what it changes, staged_train options)
    "base": ("per-filter alphas, lr 1e-4, BN re-estimated", {}),
    "layer-scale": ("one alpha per layer", dict(ternary_scale=None)),
    "no-bn-recal": ("no BN re-estimation at the end", dict(bn_recalibrate=False)),
    "average-50": ("final weights = mean of the last 50 iterations", dict(average_last=50)),
    "distill-1": ("distillation from the float model, weight 1", dict(distill=1.0)),
    "lr-5e-4": ("learning rate 5e-4", dict(learning_rate=5e-4)),
    "lr-1e-3": ("learning rate 1e-3", dict(learning_rate=1e-3)),
    "lr-3e-5": ("learning rate 3e-5", dict(learning_rate=3e-5)),
    "lr-0": ("learning rate 0: only the batch-norm statistics move", dict(learning_rate=0.0, bn_recalibrate=True)),
}

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("data")
p.add_argument("out")
p.add_argument("--model-dir", default="../shared/models/yolo-fastest")
p.add_argument("--sensitivity", default=os.path.join(HERE, "results/yolo-fastest-session10/sensitivity.json"))
p.add_argument("--stage", type=int, default=1, help="the plan's stage whose layers are made ternary")
p.add_argument("--iterations", type=int, default=200)
p.add_argument("--seeds", type=int, nargs="+", default=[0])
p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
a = p.parse_args()

s = json.load(open(a.sensitivity))
drops = [s["base"] - s["maps"][str(k)] for k in range(len(s["maps"]))]
layers = sensitivity_plan(drops)[a.stage]
cfg = os.path.join(a.model_dir, "yolo-fastest-voc.cfg")
weights = os.path.join(a.model_dir, "yolo-fastest-voc.weights")
results = []
for name in a.variants:
    what, opts = VARIANTS[name]
    for seed in a.seeds:
        o = dict(ternary_scale="filter", learning_rate=1e-4)
        o.update(opts)
        rows = staged_train(a.data, cfg, weights, plan=[layers], iterations_per_stage=a.iterations, baseline=False,
                            out_dir=os.path.join(a.out, f"{name}-seed{seed}"), batch=16, subdivisions=1, seed=seed,
                            progress=False, **o)
        fp, m = rows[0], rows[-1]
        results.append(dict(variant=name, what=what, seed=seed, map=m.map, map11=m.map11, iou=m.iou,
                            fp_map=fp.map, ternary_layers=m.ternary_layers))
        json.dump(results, open(os.path.join(a.out, "ablation.json"), "w"), indent=1)
        print(f"{name} seed {seed}: mAP {100 * m.map:.2f} (float as given {100 * fp.map:.2f})", flush=True)

lines = [f"{len(layers)} of 85 conv layers ternary (stage M{a.stage} of the sensitivity plan), {a.iterations} "
         f"iterations of batch 16 from the pretrained weights; seeds {a.seeds}.", "",
         "| variant | what changes | mAP | 11-point mAP | IoU |", "|-|-|-|-|-|"]


def cell(v):
    v = [100 * x for x in v]
    return f"{statistics.mean(v):.2f}" + (f" ± {statistics.pstdev(v):.2f}" if len(v) > 1 else "")


for name in dict.fromkeys(r["variant"] for r in results):
    rs = [r for r in results if r["variant"] == name]
    lines.append(f"| {name} | {rs[0]['what']} | {cell([r['map'] for r in rs])} | {cell([r['map11'] for r in rs])} | "
                 f"{cell([r['iou'] for r in rs])} |")
open(os.path.join(a.out, "ablation.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
