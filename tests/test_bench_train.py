"""bench/bench_train.py's PyTorch graph builder against darknet_py on a
small depthwise-separable cfg with every layer type it mirrors (grouped and
depthwise convs, conv with bias, maxpool with odd and even padding, route
with several inputs and with groups/group_id, shortcut, upsample, dropout,
two [yolo] heads): same head shapes and the same inference forward, and
one training step runs. Skipped without torch (a benchmark-only
dependency, not installed in CI)."""
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import bench_train  # noqa: E402

CONV = "[convolutional]\nbatch_normalize=1\nfilters={f}\nsize={k}\nstride={s}\npad=1\n{extra}activation={a}\n"
YOLO = "[yolo]\nmask=0,1,2\nanchors=4,6, 8,10, 12,20\nclasses=1\nnum=3\n"
HEAD = "[convolutional]\nfilters=18\nsize=1\nstride=1\npad=1\nactivation=linear\n"

SECTIONS = [
    "[net]\nwidth=32\nheight=32\nchannels=3\nbatch=2\n",
    CONV.format(f=8, k=3, s=2, extra="", a="leaky"),            # 0: 8x16x16
    CONV.format(f=8, k=3, s=1, extra="groups=8\n", a="leaky"),  # 1: depthwise
    CONV.format(f=8, k=1, s=1, extra="", a="linear"),           # 2
    "[dropout]\nprobability=.2\n",                              # 3
    "[shortcut]\nfrom=-4\nactivation=leaky\n",                  # 4: + layer 0
    CONV.format(f=8, k=3, s=2, extra="groups=8\n", a="leaky"),  # 5: depthwise stride 2, 8x8x8
    "[maxpool]\nsize=2\nstride=2\n",                            # 6: 8x4x4
    CONV.format(f=16, k=3, s=1, extra="groups=4\n", a="leaky"),  # 7: grouped, 16x4x4
    "[maxpool]\nsize=3\nstride=1\n",                            # 8: SPP-style
    "[route]\nlayers=-1,-2\n",                                  # 9: 32x4x4
    "[route]\nlayers = -3\ngroups=2\ngroup_id=1\n",             # 10: 8x4x4
    HEAD,                                                       # 11
    YOLO,                                                       # 12
    "[route]\nlayers=-3\n",                                     # 13: layer 10
    "[upsample]\nstride=2\n",                                   # 14: 8x8x8
    "[route]\nlayers=-1,5\n",                                   # 15: 16x8x8
    HEAD,                                                       # 16
    YOLO,                                                       # 17
]


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "dw.cfg"
    path.write_text("\n".join(SECTIONS))
    return str(path)


def test_graph_matches_darknet_py(cfg):
    res = bench_train.check_graph(cfg, 32)
    assert [i for i, _, _ in res] == [12, 17]
    assert [s for _, s, _ in res] == [(18, 4, 4), (18, 8, 8)]
    for _, _, err in res:
        assert err < bench_train.CHECK_TOL


def test_graph_shapes_follow_darknet_py(cfg):
    import darknet_py
    net = darknet_py.Network(cfg, batch=1)
    net.resize(64, 64)
    model = bench_train.torch_model(cfg, 64)
    for i, shape in enumerate(model.shapes):
        assert shape == tuple(net.layers[i]["output_shape"]), i


def test_torch_trainer_steps(cfg):
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    pt = bench_train.TorchTrainer(cfg, x)
    assert [tuple(t.shape) for t in pt.targets] == [(2, 18, 4, 4), (2, 18, 8, 8)]
    assert np.isfinite(pt.step())


def test_refuses_unmirrored_layers(tmp_path):
    path = tmp_path / "bad.cfg"
    path.write_text("\n".join(SECTIONS[:2] + ["[reorg]\nstride=2\n", HEAD, YOLO]))
    with pytest.raises(ValueError, match="reorg"):
        bench_train.torch_model(str(path))
