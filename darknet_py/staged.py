"""The staged ternary training method as one call: stage after stage, each
trained from the previous stage's min-loss weights (stage 0 from the
full-precision weights), each validated, plus the direct full-ternary
"no staged" baseline trained for the same total iterations; ends with the
method's table (markdown and JSON). A finished stage is not trained again.
"""
from dataclasses import asdict, dataclass
import json
import os

from . import stages as _stages
from .cfgfile import net_option, read_cfg, write_cfg


@dataclass
class StageRow:
    stage: str            # "FP", "M0".., "no staged"
    ternary_layers: int
    conv_layers: int
    map: float
    iou: float
    weights: str
    weights_bytes: int    # the .weights file
    packed_bytes: int     # the packed file (darknet_py.ternary.pack): ternary weights at 1.6 bits
    min_loss: float = float("nan")
    map11: float = float("nan")  # VOC2007's 11-point mAP of the same detections
    cfg: str = ""
    folded_bytes: int = 0  # the packed file with batch norm folded (ternary.pack(fold=True)), for deployment


def packed_size(cfg, weights, fold=False):
    """Bytes of the packed file (ternary conv weights as 5 trits per byte plus
    their alphas, every other parameter float32; fold: batch norm and alphas
    folded into float16 scale and shift per filter)."""
    import tempfile
    from .ternary import pack
    fd, out = tempfile.mkstemp(suffix=".tpk")  # never next to the weights (they may be read-only data)
    os.close(fd)
    try:
        pack(cfg, weights, out, fold=fold)
        return os.path.getsize(out)
    finally:
        os.remove(out)


def _row(stage, cfg, weights, data, progress, device, min_loss=float("nan")):
    from .evaluation import evaluate, validate
    secs = read_cfg(cfg)
    convs = [s for s in secs if s.name in ("convolutional", "conv")]
    nt = sum(1 for s in convs if s.get("ternary") == "1")
    r = validate(data, cfg, weights, progress=progress, device=device, return_detections=True)
    m11 = evaluate(r.detections, r.ground_truth, classes=len(r.per_class), points=11).map
    return StageRow(stage, nt, len(convs), r.map, r.iou, weights, os.path.getsize(weights), packed_size(cfg, weights),
                    min_loss, m11, cfg, packed_size(cfg, weights, fold=True))


def _train_sample(data, out_dir, n):
    """A list file of n images spread evenly over the .data file's train list."""
    from .names import data_options
    with open(data_options(data)["train"]) as f:
        paths = [l.strip() for l in f if l.strip()]
    step = max(1, len(paths) // max(1, n))
    path = os.path.join(out_dir, "sensitivity_images.txt")
    with open(path, "w") as f:
        f.write("\n".join(paths[::step][:n]) + "\n")
    return path


def table(rows):
    """The method's results table as markdown: StageRows, or dicts as in
    results.json with a "seed" key for several seeds, one line per stage
    with the mean and spread (population standard deviation) over the seeds."""
    import statistics
    rows = [r if isinstance(r, dict) else asdict(r) for r in rows]
    out = ["| Stage | ternary layers | mAP | 11-point mAP | IoU | seeds | .weights | packed | folded |",
           "|-|-|-|-|-|-|-|-|-|"]
    for stage in dict.fromkeys(r["stage"] for r in rows):
        rs = [r for r in rows if r["stage"] == stage]
        cells = []
        for key in ("map", "map11"):
            v = [100 * r.get(key, float("nan")) for r in rs]
            cells.append(f"{statistics.mean(v):.2f}" + (f" ± {statistics.pstdev(v):.2f}" if len(v) > 1 else ""))
        out.append(f"| {stage} | {rs[0]['ternary_layers']}/{rs[0]['conv_layers']} | {cells[0]} | {cells[1]} | "
                   f"{100 * statistics.mean(r['iou'] for r in rs):.2f} | {len(rs)} | "
                   f"{rs[0]['weights_bytes'] / 1e6:.2f} MB | {rs[0]['packed_bytes'] / 1e6:.3f} MB | "
                   f"{rs[0].get('folded_bytes', 0) / 1e6:.3f} MB |")
    return "\n".join(out)


def staged_train(data, cfg, weights=None, *, plan="auto", iterations_per_stage=1000, fp_iterations=None,
                 baseline=True, out_dir="runs/staged", learning_rate=None, seed=0, progress=True,
                 threads=None, gpus=None, fp_reference=False, batch=None, subdivisions=None,
                 sensitivity_images=200, ternary_scale=None, keep_float=(), bn_recalibrate=None,
                 average_last=None, distill=0.0):
    """Run the staged method; returns the list of StageRow (FP first, "no
    staged" last) and writes out_dir/results.md and results.json.

    weights: full-precision weights to start from; None trains them first for
    fp_iterations (default: iterations_per_stage) from random initialisation.
    fp_reference: also fine-tune the full-precision model for as many
    iterations as all the stages together (row "FP fine-tuned"), the fair
    float reference (part of a stage's gain can be extra training).
    learning_rate: of every run after the full-precision one (the stages,
    the direct baseline, "FP fine-tuned"); default, when weights are given
    (a pretrained model), a tenth of the cfg's, whose rate is meant for
    training from scratch; else the cfg's. Measured on Yolo-Fastest VOC
    (experiments/ternary_ablation.py): 1e-4 and 3e-5 equal, 5e-4 11 points
    worse.
    batch, subdivisions: override the cfg's in every run.
    plan="sensitivity" measures each conv layer's sensitivity first (the mAP
    lost with only that layer ternary, on sensitivity_images images spread
    over the training list, never the valid list; saved in
    out_dir/sensitivity.json) and stages the least sensitive layers first.
    ternary_scale="filter": one alpha per filter instead of per layer.
    keep_float: conv kinds that stay float ("first", "detector", "depthwise",
    "pointwise", "3x3+"; stages.conv_kinds): a mixed-precision variant, whose
    rows are named "M<k> mixed" and never count as full ternary.
    bn_recalibrate: as train() (default: re-estimated when a run moved the
    weights). average_last: as train(), in every ternary run (the stages and
    the direct baseline); default, when weights are given, a quarter of the
    run (measured +1.7 mAP points at 50 of 200 iterations on Yolo-Fastest),
    else 0 (off).
    distill: > 0 trains every ternary run (the stages and the direct
    baseline) with knowledge distillation from the full-precision model on
    the detector outputs, at this weight (train(teacher=..., distill=...)).
    gpus: CUDA devices to train on, as train(gpus=...); every stage is then
    validated on the first."""
    from .training import _gpu_list, train
    data, cfg = os.fspath(data), os.fspath(cfg)
    gpu_list = _gpu_list(gpus)
    device = gpu_list[0] if gpu_list else "cpu"
    os.makedirs(out_dir, exist_ok=True)
    fp_rate = learning_rate  # full-precision training from scratch: the cfg's unless given
    if learning_rate is None and weights is not None:  # fine-tuning a pretrained model
        learning_rate = net_option(cfg, "learning_rate", 0.001, float) / 10
    if average_last is None and weights is None:
        average_last = 0  # the recipe's averaging was measured on pretrained models
    done_path = os.path.join(out_dir, "done.json")
    done = json.load(open(done_path)) if os.path.exists(done_path) else {}

    def run(key, stage_cfg, init, iters):
        """-> (min-loss weights, what a next stage starts from, min loss)"""
        if key in done and os.path.exists(done[key]["weights"]):
            d = done[key]
            return d["weights"], d.get("next", d["weights"]), d["min_loss"]
        # a stage stopped part-way continues from its .backup (float shadow
        # weights, the schedule where it stopped)
        backup = os.path.join(out_dir, key, os.path.splitext(os.path.basename(stage_cfg))[0] + ".backup")
        resume = os.path.exists(backup)
        ternary = key not in ("FP", "FPref")
        extra = dict(teacher=(fp_cfg, weights), distill=distill) if ternary and distill > 0 else {}
        avg = (iters // 4 if average_last is None else average_last) if ternary else 0
        r = train(data, stage_cfg, backup if resume else init, max_batches=iters, backup=os.path.join(out_dir, key),
                  clear=not resume, seed=seed, progress=progress, threads=threads, gpus=gpus,
                  bn_recalibrate=bn_recalibrate, average_last=avg, **extra)
        if r.interrupted:
            raise KeyboardInterrupt(f"staged training interrupted in {key}; run again to resume")
        # the next stage starts from the min-loss float shadow weights of the
        # ternary layers, not their TWN values; with average_last from the
        # final (averaged) weights and their float shadow weights (.backup)
        if avg:
            done[key] = {"weights": r.final, "next": r.backup, "min_loss": r.min_loss}
        else:
            done[key] = {"weights": r.minloss, "next": r.minloss_backup or r.minloss, "min_loss": r.min_loss}
        tmp = done_path + ".tmp"
        json.dump(done, open(tmp, "w"), indent=1)
        os.replace(tmp, done_path)
        return done[key]["weights"], done[key]["next"], r.min_loss

    base = os.path.splitext(os.path.basename(cfg))[0]
    nconv = len(_stages.conv_indices(read_cfg(cfg)))

    def write_variant(name, ternary, iters, note, rate=learning_rate):
        path = os.path.join(out_dir, f"{base}_{name}.cfg")
        write_cfg(_stages.stage_sections(cfg, ternary, iters, rate, batch, subdivisions, ternary_scale),
                  path, header=note)
        return path

    fp_cfg = write_variant("FP", [], fp_iterations or iterations_per_stage, "full precision", fp_rate)
    fp_loss = float("nan")
    if weights is None:
        weights, _, fp_loss = run("FP", fp_cfg, None, fp_iterations or iterations_per_stage)
    rows = [_row("FP", fp_cfg, weights, data, progress, device, fp_loss)]
    if isinstance(plan, str) and plan == "sensitivity":
        drops = _stages.layer_sensitivity(data, cfg, weights, os.path.join(out_dir, "sensitivity.json"),
                                          image_list=_train_sample(data, out_dir, sensitivity_images),
                                          progress=progress, threads=threads)["drop"]
        plan = _stages.sensitivity_plan(drops)
    stage_cfgs = _stages.make_stages(cfg, plan, out_dir, iterations=iterations_per_stage,
                                     learning_rate=learning_rate, batch=batch, subdivisions=subdivisions,
                                     ternary_scale=ternary_scale, keep_float=keep_float)
    total = iterations_per_stage * len(stage_cfgs)
    if fp_reference:
        ref_cfg = write_variant("FPref", [], total, "full precision, fine-tuned as long as all the stages")
        w, _, loss = run("FPref", ref_cfg, weights, total)
        rows.append(_row("FP fine-tuned", ref_cfg, w, data, progress, device, loss))
    _stages.write_shell_script(data, stage_cfgs, weights, os.path.join(out_dir, "darknet.sh"),
                               backup_dir=out_dir, teacher=(fp_cfg, weights, distill) if distill > 0 else None)
    init = weights
    for k, c in enumerate(stage_cfgs):
        w, init, loss = run(f"M{k}", c, init, iterations_per_stage)
        rows.append(_row(f"M{k}" + (" mixed" if keep_float else ""), c, w, data, progress, device, loss))
    if baseline:
        kinds = _stages.conv_kinds(read_cfg(cfg))
        nost_cfg = write_variant("nostaged", [k for k in range(nconv) if kinds[k] not in keep_float], total,
                                 "direct ternary baseline (no staging)")
        w, _, loss = run("nostaged", nost_cfg, weights, total)
        rows.append(_row("no staged" + (" mixed" if keep_float else ""), nost_cfg, w, data, progress, device, loss))
    md = table(rows)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(md + "\n")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump([asdict(r) for r in rows], f, indent=1)
    return rows
