"""Stage plans and stage cfgs: the built-in plans set exactly the seed's
ternary layers; generic plans and hand-written plans behave."""
import os

import pytest

import darknet_py as dn
from darknet_py import stages
from darknet_py.cfgfile import read_cfg
from conftest import ROOT, SEED_CFG


def ternary_flags(path):
    secs = read_cfg(path)
    return [s.get("ternary", "0") == "1" for s in secs if s.name == "convolutional"]


@pytest.mark.parametrize("name,nstages", [("yolov2-voc", 4), ("yolov3-tiny-voc", 4), ("yolov3-voc", 3)])
def test_builtin_plans_match_seed_cfgs(tmp_path, name, nstages):
    if not os.path.isdir(SEED_CFG):
        pytest.skip("seed cfgs not present")
    paths = stages.make_stages(os.path.join(ROOT, "cfg", f"{name}.cfg"), "auto", tmp_path, iterations=1000)
    assert len(paths) == 4
    for k in range(nstages):
        assert ternary_flags(paths[k]) == ternary_flags(os.path.join(SEED_CFG, f"{name}_M{k}.cfg")), f"M{k}"


def test_stage_cfg_schedule_and_loadable(tmp_path):
    paths = stages.make_stages(os.path.join(ROOT, "cfg", "yolov2-tiny-voc-small.cfg"), "auto", tmp_path,
                               iterations=200, learning_rate=0.002)
    net = read_cfg(paths[0])[0]
    assert net.get("max_batches") == "200" and net.get("steps") == "160,180" and net.get("learning_rate") == "0.002"
    assert int(net.get("burn_in")) < 200
    layers = dn.Network(paths[1]).layers
    convs = [l for l in layers if l["type"] == "convolutional"]
    assert [c["ternary"] for c in convs] == ternary_flags(paths[1])


def test_generic_plan_shape():
    secs = read_cfg(os.path.join(ROOT, "cfg", "yolov2-tiny-voc-small.cfg"))
    plan = stages.generic_plan(secs)
    n = 9
    assert plan[-1] == list(range(n))
    assert plan[2] == list(range(1, n - 1))               # all but first and detector conv
    assert set(plan[0]) < set(plan[1]) < set(plan[2])
    assert max(plan[0]) == n - 2 and 0 not in plan[1]
    assert len(plan[1]) == round(0.4 * n)


def test_generic_plan_keeps_every_detector_conv_for_last(tmp_path):
    plan = stages.resolve_plan(os.path.join(ROOT, "cfg", "yolov3-tiny-voc.cfg"), "generic")
    assert 9 not in plan[2] and 12 not in plan[2] and plan[3] == list(range(13))


def test_hand_written_plan_and_errors(tmp_path):
    cfg = os.path.join(ROOT, "cfg", "yolov2-tiny-voc-small.cfg")
    paths = stages.make_stages(cfg, [[7], [5, 6, 7]], tmp_path)
    assert len(paths) == 2 and ternary_flags(paths[1]) == [False] * 5 + [True] * 3 + [False]
    with pytest.raises(ValueError, match="conv layers \\[42\\]"):
        stages.make_stages(cfg, [[42]], tmp_path)
    with pytest.raises(ValueError, match="unknown plan"):
        stages.make_stages(cfg, "nope", tmp_path)


def test_shell_script(tmp_path):
    cfg = os.path.join(ROOT, "cfg", "yolov2-tiny-voc-small.cfg")
    paths = stages.make_stages(cfg, "auto", tmp_path)
    sh = stages.write_shell_script("synth.data", paths, "fp.weights", tmp_path / "darknet.sh")
    text = open(sh).read().splitlines()
    trains = [l for l in text if "detector train" in l]
    assert len(trains) == 4 and trains[0].endswith("fp.weights -backup backup/M0 -clear")
    # from the min-loss float shadow weights of the previous stage's ternary layers
    assert "backup/M0/yolov2-tiny-voc-small_M0.minloss.backup -backup backup/M1" in trains[1]
