"""Direct ternarisation probe: every conv layer of Yolo-Fastest VOC ternary
at once (or all but the kinds kept float), trained from the pretrained
weights for a short run, then scored on the .data file's valid list.

    python experiments/direct_ternary_probe.py DATA OUT --lr 1e-3 --iterations 400 \\
        [--scale filter] [--keep-float first detector depthwise] [--distill 1] [--weights W]

(DATA: a voc.data from `python -m darknet_py voc-label`, e.g. the one
experiments/yolo_fastest_staged.sh writes; the session-10 probes in
experiments/results/yolo-fastest-session10/probes.txt.)"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from darknet_py.cfgfile import read_cfg  # noqa: E402
from darknet_py.staged import staged_train, table  # noqa: E402
from darknet_py.stages import conv_indices  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("data")
p.add_argument("out")
p.add_argument("--model-dir", default="../shared/models/yolo-fastest")
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--iterations", type=int, default=400)
p.add_argument("--scale", choices=("layer", "filter"), default="filter")
p.add_argument("--keep-float", nargs="*", default=())
p.add_argument("--distill", type=float, default=0.0)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--weights", help="start from these weights (default: the model's pretrained ones)")
a = p.parse_args()
cfg = os.path.join(a.model_dir, "yolo-fastest-voc.cfg")
n = len(conv_indices(read_cfg(cfg)))
weights = a.weights or os.path.join(a.model_dir, "yolo-fastest-voc.weights")
rows = staged_train(a.data, cfg, weights, plan=[list(range(n))],
                    iterations_per_stage=a.iterations, baseline=False, out_dir=a.out, learning_rate=a.lr, batch=16,
                    subdivisions=1, ternary_scale=a.scale, keep_float=tuple(a.keep_float), distill=a.distill,
                    seed=a.seed, progress=False)
print(table(rows))
