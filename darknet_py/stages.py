"""Stage plans of the staged ternary training method and the stage cfgs.

A plan is a list of stages; each stage is the list of conv layer indices
(counted from 0 over the [convolutional] sections) that are ternary in it.
Built-in plans reproduce the method's published staging; `generic_plan`
works for any cfg: M0 = the last few conv layers before the detectors,
M1 ~ 40%, M2 = all but the first conv and the detector convs, M3 = all;
`sensitivity_plan` orders the layers by measured sensitivity (the mAP lost
with only that layer ternary, `layer_sensitivity`), least sensitive first.
"""
import os

from .cfgfile import read_cfg, write_cfg
from .errors import DarknetValueError

DETECTORS = ("region", "yolo", "detection")


def _r(a, b):
    return list(range(a, b + 1))


BUILTIN_PLANS = {
    # yolov2-voc: 23 conv layers
    "yolov2-voc": [_r(18, 21), _r(8, 21), _r(1, 21), _r(0, 22)],
    # yolov3-tiny-voc: 13 conv layers, 5/9/12/13 ternary
    "yolov3-tiny-voc": [_r(8, 12), _r(4, 12), _r(1, 12), _r(0, 12)],
    # yolov3-voc: 75 conv layers, the 57 backbone-side layers first
    "yolov3-voc": [_r(0, 56), [i for i in range(75) if i not in (57, 58, 65, 66, 68, 69, 70, 71, 72, 73, 74)],
                   [i for i in range(75) if i not in (57, 58, 65, 66, 73, 74)], _r(0, 74)],
}


def conv_indices(sections):
    """Section indices (into sections) of the [convolutional] layers."""
    return [i for i, s in enumerate(sections) if s.name in ("convolutional", "conv")]


def detector_convs(sections):
    """Conv numbers (0-based among convs) that feed a detector layer directly."""
    convs = conv_indices(sections)
    out = []
    for i, s in enumerate(sections):
        if s.name in DETECTORS and i - 1 in convs:
            out.append(convs.index(i - 1))
    return out


def generic_plan(sections, fractions=(0.18, 0.4)):
    """M0, M1 from the output side (fractions of the conv layers), M2 = all but
    the first conv and the detector convs, M3 = all."""
    n = len(conv_indices(sections))
    det = set(detector_convs(sections))
    middle = [i for i in range(n - 1, 0, -1) if i not in det]  # output side first
    stages = [sorted(middle[:max(1, round(f * n))]) for f in fractions]
    return stages + [sorted(middle), list(range(n))]


def conv_kinds(sections):
    """The kind of each conv layer: 'first', 'detector' (feeds a detector
    layer), 'depthwise' (groups = input channels > 1), 'pointwise' (1x1) or
    '3x3+' (any other)."""
    convs = conv_indices(sections)
    det = set(detector_convs(sections))
    kinds = []
    for k, i in enumerate(convs):
        s = sections[i]
        groups, size = int(s.get("groups", 1)), int(s.get("size", 1))
        filters = int(s.get("filters", 1))
        kinds.append("first" if k == 0 else "detector" if k in det else
                     "depthwise" if groups > 1 and groups == filters else "pointwise" if size == 1 else "3x3+")
    return kinds


def sensitivity_table(cfg, drops):
    """Markdown: per conv kind, the number of layers and the mean and largest
    mAP drop (points) with one such layer ternary; then the five most
    sensitive layers."""
    kinds = conv_kinds(read_cfg(os.fspath(cfg)))
    rows = ["| conv kind | layers | mean drop | largest drop |", "|-|-|-|-|"]
    for kind in ("first", "depthwise", "pointwise", "3x3+", "detector"):
        d = [100 * drops[k] for k in range(len(drops)) if kinds[k] == kind]
        if d:
            rows.append(f"| {kind} | {len(d)} | {sum(d) / len(d):.2f} | {max(d):.2f} |")
    worst = sorted(range(len(drops)), key=lambda k: -drops[k])[:5]
    rows.append("")
    rows.append("Most sensitive: " + ", ".join(f"conv {k} ({kinds[k]}) {100 * drops[k]:.2f}" for k in worst))
    return "\n".join(rows)


def sensitivity_plan(drops, fractions=(0.18, 0.4, 0.9)):
    """A plan from per-layer sensitivities (drops[k]: the mAP lost with only
    conv layer k ternary): the least sensitive layers first, M0..M2 holding
    the given fractions of the conv layers, M3 all of them."""
    order = sorted(range(len(drops)), key=lambda k: (drops[k], k))
    n = len(order)
    return [sorted(order[:max(1, round(f * n))]) for f in fractions] + [list(range(n))]


def layer_sensitivity(data, cfg, weights, out=None, *, image_list=None, progress=True, threads=None):
    """The mAP lost with only conv layer k ternary (its TWN values, the
    pretrained batch-norm statistics kept), for every conv layer k, on
    image_list (default: the .data file's valid list; pass training images
    to keep test images out of the choice). Returns {"base": float mAP,
    "drop": [base - mAP with k ternary]}. With out, the result is written
    there as JSON as it grows and a finished or partial file is resumed."""
    import json
    from .evaluation import validate
    cfg = os.fspath(cfg)
    n = len(conv_indices(read_cfg(cfg)))
    res = json.load(open(out)) if out and os.path.exists(out) else {}
    maps = res.get("maps", {})
    kw = dict(image_list=image_list, progress=False, threads=threads)
    if "base" not in res:
        res["base"] = validate(data, cfg, weights, **kw).map
    tmp = (out or os.path.join(os.path.dirname(os.path.abspath(cfg)), "sensitivity")) + ".cfg"
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n, initial=len(maps), desc="sensitivity", unit="layer")
    for k in range(n):
        if str(k) in maps:
            continue
        write_cfg(stage_sections(cfg, [k]), tmp)
        maps[str(k)] = validate(data, tmp, weights, **kw).map
        res["maps"] = maps
        if out:
            with open(out + ".tmp", "w") as f:
                json.dump(res, f, indent=1)
            os.replace(out + ".tmp", out)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    if os.path.exists(tmp):
        os.remove(tmp)
    return {"base": res["base"], "drop": [res["base"] - maps[str(k)] for k in range(n)]}


def _signature(sections):
    return [(s.name, s.get("filters"), s.get("size"), s.get("stride"), s.get("layers"), s.get("from"))
            for s in sections[1:]]


def detect_builtin(sections):
    """The built-in plan name whose architecture matches these sections, else None."""
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cfg")
    for name in BUILTIN_PLANS:
        path = os.path.join(here, f"{name}.cfg")
        if os.path.exists(path) and _signature(read_cfg(path)) == _signature(sections):
            return name
    return None


def resolve_plan(cfg, plan="auto"):
    """A plan as a list of stages of conv indices. plan: 'auto' (built-in when
    the architecture is known, else generic), 'generic', a built-in name, or a
    list of index lists."""
    sections = read_cfg(os.fspath(cfg))
    n = len(conv_indices(sections))
    if plan == "auto":
        name = detect_builtin(sections)
        stages = BUILTIN_PLANS[name] if name else generic_plan(sections)
    elif plan == "generic":
        stages = generic_plan(sections)
    elif isinstance(plan, str):
        if plan not in BUILTIN_PLANS:
            raise DarknetValueError(f"unknown plan {plan!r}; built-in plans: {', '.join(BUILTIN_PLANS)}, auto, generic "
                             f"(and sensitivity in staged_train, which measures it)")
        stages = BUILTIN_PLANS[plan]
    else:
        stages = [sorted(set(int(i) for i in s)) for s in plan]
    for k, s in enumerate(stages):
        bad = [i for i in s if not 0 <= i < n]
        if bad:
            raise DarknetValueError(f"{cfg}: stage M{k} names conv layers {bad}, but the cfg has {n} conv layers")
    return [list(s) for s in stages]


def stage_sections(cfg, ternary, max_batches=None, learning_rate=None, batch=None, subdivisions=None,
                   ternary_scale=None):
    """The cfg's sections with ternary=1 exactly on the given conv layers
    (with ternary_scale 'filter': one alpha per filter) and, when max_batches
    is given, a steps schedule at 80% and 90% of it (and a burn_in of at most
    10% of it)."""
    sections = read_cfg(os.fspath(cfg))
    ternary = set(ternary)
    for k, i in enumerate(conv_indices(sections)):
        sections[i].remove("ternary")
        sections[i].remove("ternary_scale")
        if k in ternary:
            sections[i].set("ternary", 1)
            if ternary_scale:
                sections[i].set("ternary_scale", ternary_scale)
    net = sections[0]
    if max_batches is not None:
        net.set("max_batches", int(max_batches))
        net.set("policy", "steps")
        net.set("steps", f"{max(1, int(max_batches * .8))},{max(1, int(max_batches * .9))}")
        net.set("scales", ".1,.1")
        burn = int(net.get("burn_in", 0))
        if burn > max_batches // 10:  # a stage restarts its schedule: keep the warm-up short
            net.set("burn_in", max_batches // 10)
    for key, v in (("learning_rate", learning_rate), ("batch", batch), ("subdivisions", subdivisions)):
        if v is not None:
            net.set(key, v)
    return sections


def make_stages(cfg, plan="auto", out_dir=None, *, iterations=None, learning_rate=None,
                batch=None, subdivisions=None, prefix=None, ternary_scale=None, keep_float=()):
    """Write one cfg per stage (<base>_M0.cfg ... in out_dir, default: next to
    cfg). Returns the list of paths."""
    cfg = os.fspath(cfg)
    stages = resolve_plan(cfg, plan)
    if keep_float:  # a mixed-precision variant: these kinds of conv stay float in every stage
        kinds = conv_kinds(read_cfg(cfg))
        stages = [[k for k in s if kinds[k] not in keep_float] for s in stages]
    out_dir = out_dir or os.path.dirname(os.path.abspath(cfg))
    os.makedirs(out_dir, exist_ok=True)
    base = prefix or os.path.splitext(os.path.basename(cfg))[0]
    paths = []
    for k, ternary in enumerate(stages):
        path = os.path.join(out_dir, f"{base}_M{k}.cfg")
        secs = stage_sections(cfg, ternary, iterations, learning_rate, batch, subdivisions, ternary_scale)
        write_cfg(secs, path, header=f"Stage M{k} of {os.path.basename(cfg)}: {len(ternary)} ternary conv layers\n"
                                     f"generated by darknet_py.stages.make_stages")
        paths.append(path)
    return paths


def write_shell_script(data, stage_cfgs, weights, path, backup_dir="backup", darknet="./darknet", teacher=None):
    """The seed's darknet.sh: one `darknet detector train` per stage (backup
    folder <backup_dir>/M<k>), each from the previous stage's min-loss weights,
    with the float shadow weights of its ternary layers (.minloss.backup).
    teacher=(cfg, weights, distill): every stage distils from that model."""
    lines = ["#!/bin/sh", "# Staged ternary training: each stage starts from the previous stage's min-loss weights",
             "# (.minloss.backup: the float shadow weights of the ternary layers, not their TWN values).",
             "set -e"]
    prev = weights
    for k, c in enumerate(stage_cfgs):
        backup = os.path.join(backup_dir, f"M{k}")
        base = os.path.splitext(os.path.basename(c))[0]
        lines.append(f"mkdir -p {backup}")
        opts = f" -teacher {teacher[1]} -teacher_cfg {teacher[0]} -distill {teacher[2]}" if teacher else ""
        lines.append(f"{darknet} detector train {data} {c} {prev} -backup {backup} -clear{opts}")
        ternary = any(s.get("ternary") == "1" for s in read_cfg(c))
        prev = f"{backup}/{base}.minloss.{'backup' if ternary else 'weights'}"
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o755)
    return path
