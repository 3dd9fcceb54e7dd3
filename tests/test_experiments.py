"""experiments/yolo_fastest_staged.sh on a miniature: synthetic VOC devkit
(test.txt = val.txt here), test_train's tiny cfg, two seeds, two batches a
stage. It must write one row per model and seed with the fields the issue
asks for, the table of means, and resume: a rerun trains nothing, and a run
stopped before its last stages trains those and nothing else (a stage
stopped part-way resumes from its .backup: test_staged)."""
import json
import os
import shutil
import subprocess

import pytest

import darknet_py as dn
from darknet_py import synth
from conftest import ROOT
from test_train import tiny_cfg

SCRIPT = os.path.join(ROOT, "experiments", "yolo_fastest_staged.sh")


def run_script(env):
    r = subprocess.run(["bash", SCRIPT], env={**os.environ, **env}, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_script_rows_table_and_resume(tmp_path):
    info = synth.make_synthetic_voc(str(tmp_path / "voc"), images=16, classes=2, size=96, seed=3, split=0.75,
                                    progress=False)
    sets = os.path.join(info["devkit"], "VOC2007", "ImageSets", "Main")
    shutil.copy(os.path.join(sets, "val.txt"), os.path.join(sets, "test.txt"))
    cfg = tiny_cfg(tmp_path / "tiny.cfg", batch=4, lr=0.001, max_batches=10)
    weights = str(tmp_path / "tiny.weights")
    dn.Network(cfg, seed=1).save_weights(weights)
    out = tmp_path / "out"
    (tmp_path / "synth.names").write_text("\n".join(info["names"]) + "\n")
    env = dict(VOC_ROOT=str(tmp_path / "voc"), CFG=cfg, WEIGHTS=weights, OUT=str(out), STAGE_ITERS="2",
               SEEDS="0 1", PLAN="generic", NAMES=str(tmp_path / "synth.names"), BATCH="4", THREADS="1", PYTHONPATH=ROOT)
    run_script(env)
    rows = json.load(open(out / "results.json"))
    stages = ["FP", "FP fine-tuned", "M0", "M1", "M2", "M3", "no staged"]
    assert [(r["seed"], r["stage"]) for r in rows] == [(s, st) for s in (0, 1) for st in stages]
    for r in rows:
        assert 0 <= r["map"] <= 1 and 0 <= r["map11"] <= 1 and 0 <= r["iou"] <= 1
        assert os.path.exists(r["cfg"]) and os.path.exists(r["weights"])
        assert r["weights_bytes"] > 0 and r["packed_bytes"] > 0
    md = open(out / "results.md").read().splitlines()
    assert md[0].startswith("| Stage |") and len(md) == 2 + len(stages)
    assert all("| 2 |" in line for line in md[2:])  # two seeds per stage
    done = json.load(open(out / "seed1" / "done.json"))
    mtimes = {k: os.path.getmtime(d["weights"]) for k, d in done.items()}
    run_script(env)  # nothing to train
    assert json.load(open(out / "results.json")) == rows
    done.pop("M3")  # as if seed 1 had stopped before M3 began
    json.dump(done, open(out / "seed1" / "done.json", "w"))
    shutil.rmtree(out / "seed1" / "M3")
    run_script(env)  # M3 of seed 1 again, nothing else
    after = json.load(open(out / "seed1" / "done.json"))
    assert set(after) == set(mtimes)
    changed = {k for k, d in after.items() if os.path.getmtime(d["weights"]) != mtimes[k]}
    assert changed == {"M3"}
