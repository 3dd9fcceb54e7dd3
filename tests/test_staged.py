"""A miniature staged run: synthetic data, a tiny cfg, a few iterations per
stage. It must chain the min-loss weights, ternarise the planned layers,
validate every stage and write the table; a rerun resumes without training."""
import json
import os

import numpy as np
import pytest

import darknet_py as dn
from darknet_py import synth, voc
from darknet_py.cfgfile import read_cfg
from test_train import tiny_cfg


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("staged_synth")
    info = synth.make_synthetic_voc(str(out), images=16, classes=2, size=96, seed=2, split=0.75,
                                    progress=False)
    return voc.convert(info["devkit"], str(out), classes=info["names"], data_name="synth.data",
                       progress=False)["data"]


def test_miniature_staged_run(synth_data, tmp_path):
    cfg = tiny_cfg(tmp_path / "mini.cfg", batch=4, lr=0.001, burn_in=2, max_batches=10)
    out = tmp_path / "run"
    rows = dn.staged_train(synth_data, cfg, None, plan="generic", iterations_per_stage=3, fp_iterations=4,
                           out_dir=str(out), progress=False, threads=1)
    assert [r.stage for r in rows] == ["FP", "M0", "M1", "M2", "M3", "no staged"]
    plan = dn.stages.resolve_plan(cfg, "generic")
    assert [r.ternary_layers for r in rows] == [0] + [len(s) for s in plan] + [5]
    for r in rows:
        assert 0 <= r.map <= 1 and 0 <= r.iou <= 1 and os.path.exists(r.weights) and os.path.exists(r.cfg)
    # the 11-point mAP of each row is validate()'s with points=11
    r11 = dn.validate(synth_data, rows[1].cfg, rows[1].weights, points=11, progress=False).map
    assert rows[1].map11 == pytest.approx(r11, abs=1e-6)
    assert rows[-1].folded_bytes < rows[-1].packed_bytes < rows[0].packed_bytes
    # each stage started from the previous stage's min-loss weights, with the float
    # shadow weights of its ternary layers (darknet.sh says the same)
    sh = open(out / "darknet.sh").read()
    m0_next = rows[1].weights[:-len("weights")] + "backup"
    assert rows[1].weights.endswith(".minloss.weights") and os.path.exists(m0_next)
    assert f" {m0_next} " in sh and f" {rows[0].weights} " in sh
    # the M3 weights are fully ternary: at most 3 distinct values per conv layer
    net = dn.Network(os.path.join(out, "mini_M3.cfg"), rows[4].weights)
    for i, l in enumerate(net.layers):
        if l["type"] == "convolutional":
            assert len(np.unique(net.params(i)["weights"])) <= 3
    # table files
    md = open(out / "results.md").read().splitlines()
    assert md[0].startswith("| Stage |") and len(md) == 2 + 6 and md[-1].startswith("| no staged |")
    data = json.load(open(out / "results.json"))
    assert [d["stage"] for d in data] == [r.stage for r in rows]
    # rerun: nothing is trained again, same table
    mtimes = {p: os.path.getmtime(d["weights"]) for p, d in json.load(open(out / "done.json")).items()}
    rows2 = dn.staged_train(synth_data, cfg, None, plan="generic", iterations_per_stage=3, fp_iterations=4,
                            out_dir=str(out), progress=False, threads=1)
    assert [r.map for r in rows2] == [r.map for r in rows]
    for p, d in json.load(open(out / "done.json")).items():
        assert os.path.getmtime(d["weights"]) == mtimes[p]


def test_average_last_rows_score_the_averaged_weights(synth_data, tmp_path):
    """With average_last the ternary rows are the final (averaged) weights,
    the same on the first run and on a resumed one; the FP row is untouched."""
    cfg = tiny_cfg(tmp_path / "mini.cfg", batch=4, lr=0.001, burn_in=2, max_batches=10)
    kw = dict(plan=[[0, 1], [0, 1, 2, 3, 4]], iterations_per_stage=4, fp_iterations=4, baseline=False,
              out_dir=str(tmp_path / "run"), progress=False, threads=1, average_last=2)
    rows = dn.staged_train(synth_data, cfg, None, **kw)
    assert rows[0].weights.endswith(".minloss.weights")
    for r in rows[1:]:
        assert r.weights.endswith("_final.weights"), r.weights
    assert [r.weights for r in dn.staged_train(synth_data, cfg, None, **kw)] == [r.weights for r in rows]
    # the packed sizes were measured without leaving files next to the weights
    assert all(r.packed_bytes > 0 for r in rows) and not list(tmp_path.rglob("*.tpk"))


def test_default_recipe(synth_data, tmp_path, monkeypatch):
    """From given (pretrained) weights the runs after the float one use a
    tenth of the cfg's learning rate and the ternary ones average their last
    quarter; from scratch the cfg's rate and no averaging."""
    import darknet_py.training as training
    cfg = tiny_cfg(tmp_path / "mini.cfg", batch=4, lr=0.002, burn_in=2, max_batches=10)
    w = tmp_path / "pre.weights"
    dn.Network(str(cfg), seed=1).save_weights(w)
    calls, real_train = [], training.train

    def spy(data, cfg, weights=None, **kw):
        calls.append((os.path.basename(cfg), float(read_cfg(cfg)[0].get("learning_rate")), kw["average_last"]))
        return real_train(data, cfg, weights, **kw)

    monkeypatch.setattr(training, "train", spy)
    kw = dict(plan=[[0, 1]], iterations_per_stage=8, fp_iterations=4, fp_reference=True, progress=False, threads=1)
    dn.staged_train(synth_data, cfg, str(w), out_dir=str(tmp_path / "pre"), **kw)
    assert calls == [("mini_FPref.cfg", pytest.approx(0.0002), 0), ("mini_M0.cfg", pytest.approx(0.0002), 2),
                     ("mini_nostaged.cfg", pytest.approx(0.0002), 2)]
    calls.clear()
    dn.staged_train(synth_data, cfg, None, out_dir=str(tmp_path / "scratch"), **kw)
    assert calls == [("mini_FP.cfg", 0.002, 0), ("mini_FPref.cfg", 0.002, 0), ("mini_M0.cfg", 0.002, 0),
                     ("mini_nostaged.cfg", 0.002, 0)]


def test_stage_cfgs_of_the_run(synth_data, tmp_path):
    cfg = tiny_cfg(tmp_path / "mini.cfg", batch=4, max_batches=10)
    paths = dn.stages.make_stages(cfg, "generic", tmp_path / "cfgs", iterations=50)
    flags = [[s.get("ternary") == "1" for s in read_cfg(p) if s.name == "convolutional"] for p in paths]
    assert sum(flags[0]) < sum(flags[1]) < sum(flags[2]) < sum(flags[3]) == 5


def test_a_stage_stopped_part_way_continues_from_its_backup(synth_data, tmp_path, monkeypatch):
    """A run stopped inside a stage: the rerun trains that stage from its
    .backup without -clear (the schedule continues); other stages start as usual."""
    import darknet_py.training as training
    cfg = tiny_cfg(tmp_path / "mini.cfg", batch=4, lr=0.001, burn_in=2, max_batches=10)
    out = tmp_path / "run"

    def stop_in_m1(iteration, stats):  # stop M1 after its first checkpointed iterations
        return "M1" in current["cfg"] and iteration >= 2

    current, calls, real_train = {}, [], training.train

    def spy(data, cfg, weights=None, **kw):
        current["cfg"] = cfg
        calls.append((os.path.basename(cfg), weights, kw["clear"]))
        kw.setdefault("callback", stop_in_m1)
        return real_train(data, cfg, weights, **kw)

    monkeypatch.setattr(training, "train", spy)
    with pytest.raises(KeyboardInterrupt):
        dn.staged_train(synth_data, cfg, None, plan="generic", iterations_per_stage=4, fp_iterations=4,
                        out_dir=str(out), progress=False, threads=1, average_last=0)
    backup = out / "M1" / "mini_M1.backup"
    assert calls[-1][0] == "mini_M1.cfg" and calls[-1][2] and backup.exists()
    assert calls[-1][1] == str(out / "M0" / "mini_M0.minloss.backup")  # M0's min-loss float weights
    assert dn.Network(str(out / "mini_M1.cfg"), str(backup)).seen > 0
    calls.clear()
    monkeypatch.setattr(training, "train", lambda data, cfg, weights=None, **kw:
                        calls.append((os.path.basename(cfg), weights, kw["clear"])) or real_train(data, cfg, weights, **kw))
    rows = dn.staged_train(synth_data, cfg, None, plan="generic", iterations_per_stage=4, fp_iterations=4,
                           out_dir=str(out), progress=False, threads=1, average_last=0)
    assert [r.stage for r in rows] == ["FP", "M0", "M1", "M2", "M3", "no staged"]
    assert calls[0] == ("mini_M1.cfg", str(backup), False)  # FP and M0 were done: M1 resumes
    assert calls[1] == ("mini_M2.cfg", str(out / "M1" / "mini_M1.minloss.backup"), True)


def test_sensitivity_plan_orders_layers_by_measured_drop():
    from darknet_py.stages import sensitivity_plan
    drops = [5.0, 0.1, 2.0, -0.3, 0.1, 9.0, 1.0, 0.5, 3.0, 0.2]
    plan = sensitivity_plan(drops, fractions=(0.2, 0.5, 0.9))
    assert plan[0] == [1, 3]  # the two least sensitive (a tie goes to the lower index: 1 before 4)
    assert plan[1] == sorted([3, 1, 4, 9, 7])
    assert 5 not in plan[2] and len(plan[2]) == 9
    assert plan[3] == list(range(10))
    assert all(set(a) <= set(b) for a, b in zip(plan, plan[1:]))  # stages only add layers


def test_layer_sensitivity_measures_each_layer_and_resumes(synth_data, tmp_path):
    from darknet_py import stages
    cfg = tiny_cfg(tmp_path / "mini.cfg", batch=4, lr=0.001, burn_in=2, max_batches=10)
    r = dn.train(synth_data, cfg, max_batches=6, backup=str(tmp_path), progress=False, threads=1)
    out = str(tmp_path / "sens.json")
    s = stages.layer_sensitivity(synth_data, cfg, r.final, out, progress=False, threads=1)
    n = len(stages.conv_indices(read_cfg(cfg)))
    assert len(s["drop"]) == n
    # each drop is the float mAP minus the mAP with that layer alone ternary
    base = dn.validate(synth_data, cfg, r.final, progress=False).map
    assert s["base"] == pytest.approx(base)
    one = str(tmp_path / "one.cfg")
    from darknet_py.cfgfile import write_cfg
    write_cfg(stages.stage_sections(cfg, [1]), one)
    assert s["drop"][1] == pytest.approx(base - dn.validate(synth_data, one, r.final, progress=False).map)
    # resume: a finished layer is read back, not measured again
    saved = json.load(open(out))
    saved["maps"]["0"] = -5.0
    json.dump(saved, open(out, "w"))
    again = stages.layer_sensitivity(synth_data, cfg, r.final, out, progress=False, threads=1)
    assert again["drop"][0] == pytest.approx(base + 5.0) and again["drop"][1:] == pytest.approx(s["drop"][1:])


def test_staged_train_sensitivity_plan_uses_training_images(synth_data, tmp_path):
    cfg = tiny_cfg(tmp_path / "mini.cfg", batch=4, lr=0.001, burn_in=2, max_batches=10)
    out = tmp_path / "run"
    rows = dn.staged_train(synth_data, cfg, None, plan="sensitivity", iterations_per_stage=2, fp_iterations=3,
                           out_dir=str(out), progress=False, threads=1, baseline=False, fp_reference=True,
                           sensitivity_images=5)
    assert [r.stage for r in rows] == ["FP", "FP fine-tuned", "M0", "M1", "M2", "M3"]
    listed = open(out / "sensitivity_images.txt").read().split()
    train = open(dn.names.data_options(synth_data)["train"]).read().split()
    valid = open(dn.names.data_options(synth_data)["valid"]).read().split()
    assert listed and set(listed) <= set(train) and not set(listed) & set(valid)
    drops = json.load(open(out / "sensitivity.json"))
    assert len(drops["maps"]) == rows[0].conv_layers
    assert rows[-1].ternary_layers == rows[-1].conv_layers


def test_conv_kinds_and_sensitivity_table(tmp_path):
    from darknet_py import stages
    p = tmp_path / "dw.cfg"
    p.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n"
                 "[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
                 "[convolutional]\nfilters=8\ngroups=8\nsize=3\npad=1\nactivation=leaky\n"
                 "[convolutional]\nfilters=16\nsize=1\nactivation=leaky\n"
                 "[convolutional]\nfilters=16\nsize=3\npad=1\nactivation=leaky\n"
                 "[convolutional]\nfilters=18\nsize=1\nactivation=linear\n"
                 "[yolo]\nmask=0,1,2\nnum=3\nclasses=1\n")
    assert stages.conv_kinds(read_cfg(str(p))) == ["first", "depthwise", "pointwise", "3x3+", "detector"]
    md = stages.sensitivity_table(str(p), [.01, .30, .02, .04, .0])
    assert "| depthwise | 1 | 30.00 | 30.00 |" in md and "| first | 1 | 1.00 | 1.00 |" in md
    assert md.splitlines()[-1].startswith("Most sensitive: conv 1 (depthwise) 30.00, conv 3 (3x3+) 4.00")


def test_mixed_precision_and_per_filter_stage_cfgs(tmp_path):
    """keep_float leaves those conv kinds float in every stage (so M3 is not
    full ternary); ternary_scale='filter' lands on the ternary layers only."""
    from darknet_py import stages
    p = tmp_path / "dw.cfg"
    p.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n"
                 + "".join("[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=leaky\n" for _ in range(4))
                 + "[convolutional]\nfilters=18\nsize=1\nactivation=linear\n[yolo]\nmask=0,1,2\nnum=3\nclasses=1\n")
    paths = stages.make_stages(str(p), "generic", str(tmp_path / "out"), keep_float=("first", "detector"),
                               ternary_scale="filter")
    last = read_cfg(paths[-1])
    convs = [s for s in last if s.name == "convolutional"]
    assert [s.get("ternary") for s in convs] == [None, "1", "1", "1", None]
    assert [s.get("ternary_scale") for s in convs] == [None, "filter", "filter", "filter", None]
    assert dn.Network(paths[-1]).layers[1]["ternary"]


# A small network of Yolo-Fastest's kind, written here (not a copy of its cfg):
# depthwise 3x3 convs (groups = channels) between 1x1 convs, linear
# bottlenecks, dropout before a shortcut, two [yolo] heads with AlexeyAB's
# options, route + upsample.
MINI_FASTEST = """[net]
batch=4
subdivisions=1
width=96
height=96
channels=3
momentum=0.949
decay=0.0005
learning_rate=0.001
max_batches=10
policy=steps
steps=8,9
scales=.1,.1
""" + "".join(
    "\n[convolutional]\n" + "\n".join(f"{k}={v}" for k, v in opts.items()) + "\n" if kind == "c" else
    f"\n[{kind}]\n" + "\n".join(f"{k}={v}" for k, v in opts.items()) + "\n"
    for kind, opts in [
        ("c", dict(filters=8, size=3, stride=2, pad=1, batch_normalize=1, activation="leaky")),
        ("c", dict(filters=8, size=1, stride=1, pad=0, batch_normalize=1, activation="leaky")),
        ("c", dict(filters=8, groups=8, size=3, stride=1, pad=1, batch_normalize=1, activation="leaky")),
        ("c", dict(filters=4, size=1, stride=1, pad=0, batch_normalize=1, activation="linear")),
        ("c", dict(filters=8, size=1, stride=1, pad=0, batch_normalize=1, activation="leaky")),
        ("c", dict(filters=8, groups=8, size=3, stride=2, pad=1, batch_normalize=1, activation="leaky")),
        ("c", dict(filters=8, size=1, stride=1, pad=0, batch_normalize=1, activation="linear")),
        ("c", dict(filters=16, size=1, stride=1, pad=0, batch_normalize=1, activation="leaky")),
        ("c", dict(filters=16, groups=16, size=3, stride=1, pad=1, batch_normalize=1, activation="leaky")),
        ("c", dict(filters=8, size=1, stride=1, pad=0, batch_normalize=1, activation="linear")),
        ("dropout", dict(probability=.15)),
        ("shortcut", {"from": -5, "activation": "linear"}),
        ("c", dict(filters=16, size=1, stride=1, pad=0, batch_normalize=1, activation="leaky")),
        ("c", dict(filters=16, groups=16, size=3, stride=2, pad=1, batch_normalize=1, activation="leaky")),
        ("c", dict(filters=16, size=1, stride=1, pad=0, batch_normalize=1, activation="leaky")),
        ("c", dict(filters=21, size=1, stride=1, pad=1, activation="linear")),
        ("yolo", dict(mask="3,4,5", anchors="10,12, 18,20, 25,30, 35,40, 50,45, 70,70", classes=2, num=6,
                      jitter=.15, ignore_thresh=.5, truth_thresh=1, random=0, scale_x_y=1.0, iou_thresh=.213,
                      cls_normalizer=1.0, iou_normalizer=.07, iou_loss="ciou", nms_kind="greedynms", beta_nms=.6)),
        ("route", dict(layers=-3)),
        ("upsample", dict(stride=2)),
        ("route", dict(layers="-1, 11")),
        ("c", dict(filters=16, size=1, stride=1, pad=0, batch_normalize=1, activation="leaky")),
        ("c", dict(filters=21, size=1, stride=1, pad=1, activation="linear")),
        ("yolo", dict(mask="0,1,2", anchors="10,12, 18,20, 25,30, 35,40, 50,45, 70,70", classes=2, num=6,
                      jitter=.15, ignore_thresh=.5, truth_thresh=1, random=0, scale_x_y=1.0, iou_thresh=.213,
                      cls_normalizer=1.0, iou_normalizer=.07, iou_loss="ciou", nms_kind="greedynms", beta_nms=.6)),
    ])


def test_staged_run_of_a_depthwise_separable_network(synth_data, tmp_path):
    """The Yolo-Fastest recipe on a miniature of its kind: the float model
    trained first, the sensitivity plan, one alpha per filter, distillation
    from the float model; the depthwise layers are recognised, every stage
    validates, M3 is fully ternary."""
    cfg = tmp_path / "mini-fastest.cfg"
    cfg.write_text(MINI_FASTEST)
    kinds = dn.stages.conv_kinds(read_cfg(str(cfg)))
    assert kinds.count("depthwise") == 4 and kinds[0] == "first" and kinds.count("detector") == 2
    out = tmp_path / "run"
    rows = dn.staged_train(synth_data, str(cfg), None, plan="sensitivity", iterations_per_stage=2, fp_iterations=3,
                           out_dir=str(out), progress=False, threads=1, ternary_scale="filter", distill=1.0,
                           sensitivity_images=8)
    assert [r.stage for r in rows] == ["FP", "M0", "M1", "M2", "M3", "no staged"]
    assert [r.ternary_layers for r in rows] == [0, 3, 6, 14, 16, 16]  # 18%, 40%, 90% of 16
    assert len(json.load(open(out / "sensitivity.json"))["maps"]) == 16
    for sec in read_cfg(str(out / "mini-fastest_M3.cfg")):
        if sec.name == "convolutional":
            assert sec.get("ternary") == "1" and sec.get("ternary_scale") == "filter"
    assert "-teacher" in open(out / "darknet.sh").read()
