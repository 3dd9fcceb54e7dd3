#!/usr/bin/env python3
"""Training speed (forward + backward + SGD update) in images per second,
darknet_py vs the same network in PyTorch on the CPU, side by side in one
run; prints markdown tables.

darknet_py: Network(cfg, batch=B), resized to each input size, set_train(True),
then train_step(images, truth) over B images (one sub-batch, one update):
the cfg's own loss layers ([region] for yolov2-tiny-voc, two [yolo] for
Yolo-Fastest), momentum and decay.
PyTorch: a module built from the same cfg, run layer by layer as Darknet
runs it (torch_model):
  [convolutional]  Conv2d with the cfg's groups (depthwise: groups =
                   channels), without bias + BatchNorm2d (eps 1e-6, Darknet's)
                   where batch_normalize=1, with bias otherwise; then
                   LeakyReLU(0.1), ReLU, Sigmoid (logistic) or nothing (linear)
  [maxpool]        Darknet's padding: size-1 pixels of -inf, split left/top =
                   (size-1)//2 and the rest right/bottom, so that the size-2
                   stride-1 pool keeps 13x13 (PyTorch's own padding where the
                   split is even, as in the size 3/5/9 stride-1 SPP pools)
  [route]          layers = ... (negative: relative), one or several inputs
                   concatenated on channels; groups/group_id take that channel
                   slice of each input (AlexeyAB's)
  [shortcut]       from = one layer; add, then the activation (plain
                   shortcuts only: same shapes, no alpha/beta/weights_type)
  [upsample]       nearest, by stride (stride > 0, scale 1 only)
  [dropout]        nn.Dropout(probability) in training, the cfg's probability,
                   dropping and scaling kept values by 1/(1-p) as Darknet does;
                   identity in eval mode (--check), as Darknet's inference
  loss layers      ([region], [yolo], [detection], [cost]) are the loss
                   points: the loss is the sum over heads of the MSE between
                   the head's input (the layer before it) and a fixed random
                   target of that shape (one head for yolov2-tiny-voc, as
                   before; the loss's cost is negligible next to the network's).
                   Routes and shortcuts may not read a loss layer's output;
                   layers after the last loss layer are not built.
Other layer types, activations or options raise ValueError before timing.
torch.optim.SGD(momentum=0.9, weight_decay=0.0005), torch.set_num_threads(T).

Synthetic data: the same random images (and, for darknet_py, the same
random boxes) every step; no data loading, no augmentation in either.
Timing: warm-up steps, then rounds in which the two frameworks alternate
(each followed by a short pause so that spinning BLAS/OpenMP threads settle),
so load changes on a shared machine hit both alike; medians over rounds.
The machine's plain sgemm GFLOPS (NumPy matmul in a subprocess, as in
bench_conv.py) is measured in the same run for scale.
--cfg may be given several times: one table with a row per model, size and
thread count.

--split adds darknet_py's forward (training mode, loss included) and
backward timed in separate calls (net._net.forward, net._net.backward) in
the same rounds, next to PyTorch's forward+loss / backward / optimizer step.
Our backward there also computes dL/d(input image), which train_step skips
(one extra GEMM + col2im on the first layer), so fwd + bwd can come out a
little above the step.
--profile (or --profile-only) adds a per-layer table: every
[convolutional] and [maxpool] layer as its own one-layer network at its
input shape and batch B, training forward and backward (with dL/d(input)),
next to the same PyTorch block (see profile_layers); other layer types
(route, shortcut, ...) are left out of that table and named under it.
--check only verifies the PyTorch graph and exits: darknet_py's inference
forward (batch 2, the first --sizes) against the PyTorch module in eval mode
with the same parameters copied in (Network.params), compared at every loss
layer's input; the error is max|PyTorch - ours| / max|ours| per head, and the
check fails (exit 1) above 1e-4. Parameters: the .weights file next to the
cfg when there is one, else darknet_py's initial weights with the batch-norm
scales, biases and rolling statistics randomised.

  python3 bench/bench_train.py [--cfg PATH [--cfg PATH ...]] [--sizes 416,224]
                               [--threads 1,2] [--batch 16] [--rounds 5]
                               [--warmup 2] [--split] [--profile | --profile-only]
                               [--profile-size 416] [--profile-threads 1]
                               [--no-torch] [--check]

Yolo-Fastest (issue 21):
  python3 bench/bench_train.py --cfg ../shared/models/yolo-fastest/yolo-fastest-voc.cfg \\
      --cfg ../shared/models/yolo-fastest/yolo-fastest-1.1-xl-coco.cfg --sizes 320 --threads 1,2

Depends on darknet_py, numpy and torch. torch is a benchmark-only dependency,
not in requirements.txt: pip install torch (the CPU wheel: pip install torch
--index-url https://download.pytorch.org/whl/cpu; PyPI's CUDA-bundled wheel
also runs on the CPU).
"""
import argparse
import atexit
import gc
import os
import statistics
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
import darknet_py  # noqa: E402
from bench_conv import read_cfg, sgemm_gflops  # noqa: E402

DEFAULT_CFG = os.path.join(os.path.dirname(ROOT), "shared", "reference", "darknet-cfg", "yolov2-tiny-voc.cfg")
LOSS_LAYERS = ("region", "yolo", "detection", "cost")
CONV, MAXPOOL = ("convolutional", "conv"), ("maxpool", "max")
PAUSE = 0.3  # seconds between the two frameworks' steps
CHECK_TOL = 1e-4


# ---------------------------------------------------------------- PyTorch side

def conv_geometry(o):
    """(size, stride, pad) of a [convolutional] section, as Darknet reads it."""
    k, s = int(o.get("size", 1)), int(o.get("stride", 1))
    return k, s, (k // 2 if int(o.get("pad", 0)) else int(o.get("padding", 0)))


def pool_geometry(o):
    """(size, stride, padding) of a [maxpool] section with Darknet's defaults:
    stride 1, size = stride, padding = size-1."""
    s = int(o.get("stride", 1))
    k = int(o.get("size", s))
    return k, s, int(o.get("padding", k - 1))


def torch_activation(act):
    """The module of a Darknet activation name; None for linear.
    Raises ValueError on names not mirrored here."""
    import torch.nn as nn
    table = {"leaky": lambda: nn.LeakyReLU(0.1), "relu": nn.ReLU, "logistic": nn.Sigmoid}
    if act == "linear":
        return None
    if act not in table:
        raise ValueError(f"activation {act} not built here")
    return table[act]()


def torch_block(name, o, c):
    """(kind, module, output channels) of one [convolutional] or [maxpool]
    section with c input channels (see the module docstring).
    Raises ValueError on other sections or options not mirrored."""
    import torch.nn as nn
    import torch.nn.functional as F

    class DarknetMaxPool(nn.Module):
        """Darknet's maxpool: size-1 pixels of -inf padding, (size-1)//2 on
        the left/top and the rest on the right/bottom, then floor division."""

        def __init__(self, size, stride, padding):
            super().__init__()
            self.lo, self.hi = padding // 2, padding - padding // 2
            if self.lo == self.hi and self.lo <= size // 2:  # PyTorch pads with -inf itself
                self.pool = nn.MaxPool2d(size, stride, self.lo)
                self.lo = self.hi = 0
            else:
                self.pool = nn.MaxPool2d(size, stride)

        def forward(self, x):
            if self.lo or self.hi:
                x = F.pad(x, (self.lo, self.hi, self.lo, self.hi), value=float("-inf"))
            return self.pool(x)

    if name in CONV:
        k, s, pad = conv_geometry(o)
        f, bn, g = int(o["filters"]), int(o.get("batch_normalize", 0)), int(o.get("groups", 1))
        if g < 1 or c % g or f % g:
            raise ValueError(f"groups={g} does not divide {c} inputs and {f} filters")
        mods = [nn.Conv2d(c, f, k, s, pad, groups=g, bias=not bn)]
        if bn:
            mods.append(nn.BatchNorm2d(f, eps=1e-6))
        act = torch_activation(o.get("activation", "logistic"))
        if act is not None:
            mods.append(act)
        return "conv", nn.Sequential(*mods), f
    if name in MAXPOOL:
        return "maxpool", DarknetMaxPool(*pool_geometry(o)), c
    raise ValueError(f"[{name}] has no PyTorch equivalent here")


def ints(v):
    return [int(x) for x in str(v).split(",") if x.strip()]


def torch_plan(layers, c, h, w):
    """The sections after [net] up to the last loss layer, as
    (plan, modules, heads, shapes): plan[i] = (kind, arg) with kind one of
    conv / maxpool / op (module applied to the previous output) / route
    (arg: [(layer, first channel, end channel)]) / shortcut (arg: the from
    layer) / head (a loss layer: its input is a loss point); heads: the loss
    layers' indexes; shapes[i]: layer i's output (c, h, w).
    Raises ValueError where a layer is not mirrored."""
    import torch.nn as nn

    last = max((i for i, (n, _) in enumerate(layers) if n in LOSS_LAYERS), default=-1)
    if last < 0:
        raise ValueError("no loss layer ([region], [yolo], [detection], [cost]) to end on")
    plan, mods, heads, shapes = [], [], [], []

    def ref(i, j, what):
        j = i + j if j < 0 else j
        if not 0 <= j < i:
            raise ValueError(f"layer {i}: {what} refers to layer {j}")
        if j in heads:
            raise ValueError(f"layer {i}: {what} reads loss layer {j}'s output (not mirrored)")
        return j

    for i, (name, o) in enumerate(layers[:last + 1]):
        if name in CONV or name in MAXPOOL:
            kind, mod, oc = torch_block(name, o, c)
            if kind == "conv":
                k, s, pad = conv_geometry(o)
                h, w = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
            else:
                k, s, pad = pool_geometry(o)
                h, w = (h + pad - k) // s + 1, (w + pad - k) // s + 1
            plan.append((kind, None))
            mods.append(mod)
            c = oc
        elif name == "route":
            srcs = [ref(i, j, "[route]") for j in ints(o["layers"])]
            g, gid = int(o.get("groups", 1)), int(o.get("group_id", 0))
            if g < 1 or not 0 <= gid < g:
                raise ValueError(f"layer {i}: [route] groups={g} group_id={gid}")
            parts = []
            for j in srcs:
                jc, jh, jw = shapes[j]
                if (jh, jw) != shapes[srcs[0]][1:] or jc % g:
                    raise ValueError(f"layer {i}: [route] inputs {srcs} do not fit together")
                parts.append((j, gid * (jc // g), (gid + 1) * (jc // g)))
            plan.append(("route", parts))
            mods.append(nn.Identity())
            c, h, w = sum(b - a for _, a, b in parts), *shapes[srcs[0]][1:]
        elif name == "shortcut":
            src = ints(o["from"])
            if (len(src) != 1 or float(o.get("alpha", 1)) != 1 or float(o.get("beta", 1)) != 1
                    or o.get("weights_type", "none") != "none"):
                raise ValueError(f"layer {i}: only a plain one-input [shortcut] is built here")
            j = ref(i, src[0], "[shortcut]")
            if shapes[j] != (c, h, w):
                raise ValueError(f"layer {i}: [shortcut] from a layer of another shape")
            act = torch_activation(o.get("activation", "linear"))
            plan.append(("shortcut", j))
            mods.append(nn.Identity() if act is None else act)
        elif name == "upsample":
            s, scale = int(o.get("stride", 2)), float(o.get("scale", 1))
            if s < 1 or scale != 1:
                raise ValueError(f"layer {i}: only [upsample] with stride > 0 and scale 1 is built here")
            plan.append(("op", None))
            mods.append(nn.Upsample(scale_factor=s, mode="nearest"))
            h, w = h * s, w * s
        elif name == "dropout":
            if int(o.get("dropblock", 0)):
                raise ValueError(f"layer {i}: [dropout] dropblock not built here")
            plan.append(("op", None))
            mods.append(nn.Dropout(float(o.get("probability", .5))))
        elif name in LOSS_LAYERS:
            plan.append(("head", None))
            mods.append(nn.Identity())
            heads.append(i)
        else:
            raise ValueError(f"[{name}] has no PyTorch equivalent here")
        shapes.append((c, h, w))
    return plan, mods, heads, shapes


def torch_model(cfg, size=None):
    """The cfg as a PyTorch module whose forward returns the list of the loss
    layers' inputs, in layer order. size: input height and width (default:
    the cfg's); it only serves the shape checks."""
    import torch
    import torch.nn as nn

    secs = read_cfg(cfg)
    net = secs[0][1]
    h, w = (size, size) if size else (int(net.get("height", 416)), int(net.get("width", 416)))
    plan, mods, heads, shapes = torch_plan(secs[1:], int(net.get("channels", 3)), h, w)
    keep = {j for kind, arg in plan if kind == "route" for j, _, _ in arg}
    keep |= {arg for kind, arg in plan if kind == "shortcut"}

    class DarknetGraph(nn.Module):
        """Darknet's layer list run in order, keeping only the outputs that
        routes and shortcuts read."""

        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(mods)
            self.plan, self.keep, self.heads, self.shapes = plan, keep, heads, shapes

        def forward(self, x):
            outs, out_heads = {}, []
            for i, ((kind, arg), mod) in enumerate(zip(self.plan, self.layers)):
                if kind == "route":
                    if len(arg) == 1:
                        j, a, b = arg[0]
                        x = outs[j][:, a:b]
                    else:
                        x = torch.cat([outs[j][:, a:b] for j, a, b in arg], 1)
                elif kind == "shortcut":
                    x = mod(x + outs[arg])
                elif kind == "head":
                    out_heads.append(x)
                else:
                    x = mod(x)
                if i in self.keep:
                    outs[i] = x
            return out_heads

    return DarknetGraph()


class TorchTrainer:
    """One SGD step on a fixed batch; records forward+loss / backward / step times."""

    def __init__(self, cfg, x, lr=1e-3):
        import torch
        self.torch = torch
        self.model = torch_model(cfg, x.shape[-1])
        self.model.train()
        self.x = torch.from_numpy(x)
        with torch.no_grad():
            heads = self.model(self.x)
        gen = torch.Generator().manual_seed(0)
        self.targets = [torch.randn(y.shape, generator=gen) for y in heads]
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9, weight_decay=0.0005)
        self.parts = {"fwd": [], "bwd": [], "upd": []}

    def step(self):
        F = self.torch.nn.functional
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=False)
        heads = self.model(self.x)
        loss = F.mse_loss(heads[0], self.targets[0])
        for y, t in zip(heads[1:], self.targets[1:]):
            loss = loss + F.mse_loss(y, t)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        self.opt.step()
        t3 = time.perf_counter()
        self.parts["fwd"].append(t1 - t0)
        self.parts["bwd"].append(t2 - t1)
        self.parts["upd"].append(t3 - t2)
        return loss.item()


def copy_params(net, model):
    """darknet_py's conv parameters into the PyTorch module (same layer indexes)."""
    import torch
    with torch.no_grad():
        for i, ((kind, _), mod) in enumerate(zip(model.plan, model.layers)):
            if kind != "conv":
                continue
            p, conv = net.params(i), mod[0]
            conv.weight.copy_(torch.from_numpy(np.array(p["weights"]).reshape(conv.weight.shape)))
            if conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(np.array(p["biases"])))
            else:
                bn = mod[1]
                bn.weight.copy_(torch.from_numpy(np.array(p["scales"])))
                bn.bias.copy_(torch.from_numpy(np.array(p["biases"])))
                bn.running_mean.copy_(torch.from_numpy(np.array(p["rolling_mean"])))
                bn.running_var.copy_(torch.from_numpy(np.array(p["rolling_variance"])))


def check_graph(cfg, size, weights=None, batch=2, seed=0):
    """darknet_py's inference forward vs the PyTorch module in eval mode with
    the same parameters, at every loss layer's input. weights: a .weights
    file, or None for darknet_py's initial weights with randomised
    batch-norm scales, biases and rolling statistics.
    Returns [(loss layer index, head shape, max|PyTorch - ours| / max|ours|)]."""
    import torch
    rng = np.random.default_rng(seed)
    net = darknet_py.Network(cfg, batch=batch, seed=seed)
    if weights:
        net.load_weights(weights)
    else:
        for l in net.layers:
            if l["type"] == "convolutional":
                p = net.params(l["index"])
                for k, lo, hi in (("scales", .5, 1.5), ("biases", -.2, .2),
                                  ("rolling_mean", -.2, .2), ("rolling_variance", .5, 1.5)):
                    if k in p:
                        p[k][:] = rng.uniform(lo, hi, p[k].shape)
    net.resize(size, size)
    x = rng.random((batch, 3, size, size), dtype=np.float32)
    net.forward(x)
    model = torch_model(cfg, size)
    copy_params(net, model)
    model.eval()
    with torch.no_grad():
        heads = model(torch.from_numpy(x))
    out = []
    for i, y in zip(model.heads, heads):
        ref = np.asarray(net.layer_output(i - 1))
        y = y.numpy()
        if y.shape != ref.shape:
            out.append((i, y.shape, float("inf")))
            continue
        out.append((i, ref.shape[1:], float(np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-30))))
    return out


# ---------------------------------------------------------------- darknet_py side

def random_truth(n, classes, rng, boxes=4, max_boxes=30):
    """n x max_boxes x 5 (x, y, w, h, class), `boxes` random boxes per image."""
    t = np.zeros((n, max_boxes, 5), np.float32)
    t[:, :boxes, 0:2] = rng.uniform(0.2, 0.8, (n, boxes, 2))
    t[:, :boxes, 2:4] = rng.uniform(0.05, 0.5, (n, boxes, 2))
    t[:, :boxes, 4] = rng.integers(0, max(classes, 1), (n, boxes))
    return t


def dn_trainer(cfg, batch, size, threads):
    net = darknet_py.Network(cfg, batch=batch, seed=0, threads=threads)
    net.resize(size, size)
    net._net.set_train(True)
    return net


def dn_classes(net):
    for l in reversed(net.layers):
        if l["type"] in LOSS_LAYERS:
            return l.get("classes", 1)
    return 1


# ---------------------------------------------------------------- per-layer profile

def profiled_layers(cfg, size):
    """([(index, name, opts, (c, h, w) in)] of the [convolutional] and
    [maxpool] layers, [names of the other layer types left out]), with
    darknet_py's shapes at size x size."""
    secs = read_cfg(cfg)[1:]
    net = darknet_py.Network(cfg, batch=1, seed=0)
    net.resize(size, size)
    out, skipped = [], []
    for l in net.layers:
        name, o = secs[l["index"]]
        if name in CONV or name in MAXPOOL:
            out.append((l["index"], name, o, tuple(l["input_shape"])))
        elif name not in LOSS_LAYERS and name not in skipped:
            skipped.append(name)
    return out, skipped


def one_layer_cfg(path, batch, c, h, w, section=None):
    """[net] of input c x h x w, the given (name, opts) layer if any, then a
    1x1 stride-W conv with one filter (the sink)."""
    lines = ["[net]", f"width={w}", f"height={h}", f"channels={c}", f"batch={batch}",
             "momentum=0.9", "decay=0.0005", "learning_rate=0.001", ""]
    if section:
        name, o = section
        lines += [f"[{name}]"] + [f"{k}={v}" for k, v in o.items()] + [""]
    lines += ["[convolutional]", "filters=1", "size=1", f"stride={max(h, w)}", "activation=linear"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def profile_layers(cfg, batch, size, threads, rounds):
    """Per [convolutional] and [maxpool] layer: darknet_py's training forward
    and backward, and the same PyTorch block's forward and backward (both
    with dL/dinput), interleaved; median seconds. Returns (rows, the names of
    the layer types left out).

    Each layer runs as its own darknet_py network followed by a 1x1
    stride-W conv with one filter (the sink, as in bench_conv.py), so that
    the layer's output is not copied to Python; the layer's delta then comes
    from the sink (no kernel skips zeros, so the timing is the same). The
    call overhead -- the sink, the dL/dinput array returned to Python (a
    fresh allocation of the layer's input size) and its clearing -- is timed
    on a sink-only network of the same input shape, in the same rounds, and
    reported apart ("ovh")."""
    import torch
    layers, skipped = profiled_layers(cfg, size)
    tmp = tempfile.mkdtemp(prefix="bench_train_")
    atexit.register(shutil.rmtree, tmp, True)  # the temporary cfgs and weights
    rng = np.random.default_rng(1)
    rows = []
    for i, name, o, (c, h, w) in layers:
        kind, mod, _ = torch_block(name, o, c)
        nets = []
        for tag, section in (("layer", (name, o)), ("sink", None)):
            path = os.path.join(tmp, f"{tag}{i}.cfg")
            one_layer_cfg(path, batch, c, h, w, section)
            net = darknet_py.Network(path, batch=batch, seed=0, threads=threads)
            net._net.set_train(True)
            nets.append(net)
        x = rng.random((batch, c, h, w), dtype=np.float32)
        oc, oh, ow = nets[0].layers[0]["output_shape"]
        g = rng.standard_normal((batch, oc, oh, ow), dtype=np.float32)  # for PyTorch
        gs = rng.standard_normal((batch, 1, 1, 1), dtype=np.float32)  # for the sinks
        tx = torch.from_numpy(x).requires_grad_(True)
        tg = torch.from_numpy(g)
        ts = {k: [] for k in ("dn_f", "dn_b", "ovh", "pt_f", "pt_b")}
        for r in range(rounds + 1):
            t0 = time.perf_counter()
            nets[0]._net.forward(x)
            t1 = time.perf_counter()
            nets[0]._net.backward(gs)
            t2 = time.perf_counter()
            nets[1]._net.forward(x)
            nets[1]._net.backward(gs)
            t3 = time.perf_counter()
            time.sleep(PAUSE / 3)
            t4 = time.perf_counter()
            y = mod(tx)
            t5 = time.perf_counter()
            y.backward(tg)
            t6 = time.perf_counter()
            time.sleep(PAUSE / 3)
            tx.grad = None
            mod.zero_grad()
            if r:  # the first round is warm-up
                for k, v in zip(ts, (t1 - t0, t2 - t1, t3 - t2, t5 - t4, t6 - t5)):
                    ts[k].append(v)
        med = {k: statistics.median(v) for k, v in ts.items()}
        if kind == "conv":
            k, s, _ = conv_geometry(o)
            groups = int(o.get("groups", 1))
            desc = f"{o.get('filters')} {k}x{k}/{s}" + (f" g{groups}" if groups != 1 else "")
        else:
            k, s, _ = pool_geometry(o)
            desc = f"{k}/{s}"
        rows.append((i, name, f"{c}x{h}x{w}", desc, med))
        del nets
        gc.collect()
    return rows, skipped


# ---------------------------------------------------------------- main

def run_check(cfgs, size):
    """--check: prints each head's error; True when all are within CHECK_TOL."""
    ok = True
    for cfg in cfgs:
        weights = os.path.splitext(cfg)[0] + ".weights"
        weights = weights if os.path.isfile(weights) else None
        try:
            res = check_graph(cfg, size, weights)
        except ValueError as e:
            print(f"{os.path.basename(cfg)}: not mirrored in PyTorch: {e}")
            ok = False
            continue
        src = os.path.basename(weights) if weights else "initial weights, random batch-norm parameters"
        for i, shape, err in res:
            ok &= err <= CHECK_TOL
            print(f"{os.path.basename(cfg)} {size}x{size} ({src}): head {i} input "
                  f"{'x'.join(map(str, shape))}: max|PyTorch - ours| / max|ours| = {err:.2e}"
                  f"{'' if err <= CHECK_TOL else f'  > {CHECK_TOL:g} FAILED'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfg", action="append", help=f"may be repeated (default {DEFAULT_CFG})")
    ap.add_argument("--sizes", default="416,224")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--split", action="store_true", help="also time darknet_py's forward and backward apart")
    ap.add_argument("--profile", action="store_true", help="per-layer table (one-layer networks)")
    ap.add_argument("--profile-size", type=int, default=416)
    ap.add_argument("--profile-threads", type=int, default=1)
    ap.add_argument("--profile-only", action="store_true", help="only the per-layer table")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--check", action="store_true",
                    help="only compare the PyTorch graph's forward with darknet_py's, then exit")
    args = ap.parse_args()

    cfgs = args.cfg or [DEFAULT_CFG]
    if args.check:
        sys.exit(0 if run_check(cfgs, int(args.sizes.split(",")[0])) else 1)
    sizes = [] if args.profile_only else [int(s) for s in args.sizes.split(",")]
    args.profile |= args.profile_only
    threads = [int(t) for t in args.threads.split(",")]
    if not args.no_torch:
        import torch
        for cfg in cfgs:
            try:  # fails early on a cfg PyTorch cannot mirror
                torch_model(cfg)
            except ValueError as e:
                sys.exit(f"{cfg}: {e}")
        tver = torch.__version__
    else:
        tver = "-"
    B = args.batch

    gemm = {t: sgemm_gflops(t) for t in sorted(set(threads + [args.profile_threads]))}
    print(f"# training step, batch {B}, median of {args.rounds} interleaved rounds after {args.warmup} "
          f"warm-up steps; PyTorch {tver}\n")
    for t in gemm:
        print(f"NumPy sgemm 1024^3, {t} thread(s): {gemm[t]:.1f} GFLOPS")
    print()

    results = []
    for cfg in cfgs:
        name = os.path.splitext(os.path.basename(cfg))[0]
        for size in sizes:
            rng = np.random.default_rng(0)
            x = rng.random((B, 3, size, size), dtype=np.float32)
            for t in threads:
                net = dn_trainer(cfg, B, size, t)
                truth = random_truth(B, dn_classes(net), rng)
                pt = None
                if not args.no_torch:
                    torch.set_num_threads(t)
                    torch.manual_seed(0)
                    pt = TorchTrainer(cfg, x)
                losses = []
                for _ in range(args.warmup):
                    net._net.train_step(x, truth)
                    if pt:
                        pt.step()
                if pt:
                    for v in pt.parts.values():
                        v.clear()
                ts = {"dn": [], "pt": [], "dn_f": [], "dn_b": []}
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    losses.append(net._net.train_step(x, truth))
                    ts["dn"].append(time.perf_counter() - t0)
                    time.sleep(PAUSE)
                    if args.split:
                        net._net.set_truth(truth)
                        t0 = time.perf_counter()
                        net._net.forward(x)
                        t1 = time.perf_counter()
                        net._net.backward()
                        t2 = time.perf_counter()
                        ts["dn_f"].append(t1 - t0)
                        ts["dn_b"].append(t2 - t1)
                        time.sleep(PAUSE)
                    if pt:
                        t0 = time.perf_counter()
                        pt.step()
                        ts["pt"].append(time.perf_counter() - t0)
                        time.sleep(PAUSE)
                if not all(np.isfinite(losses)):
                    print(f"warning: darknet_py loss not finite for {name} at {size}, {t} threads: {losses}",
                          file=sys.stderr)
                med = {k: (statistics.median(v) if v else float("nan")) for k, v in ts.items()}
                if pt:
                    for k, v in pt.parts.items():
                        med["pt_" + k[0]] = statistics.median(v)
                results.append((name, size, t, med))
                print(f"  {name} {size} {t} thr: ours {med['dn']:.2f} s/step, PyTorch {med['pt']:.2f} s/step",
                      file=sys.stderr)
                del net, pt
                gc.collect()

    if results:
        print_step_tables(B, gemm, results, args.split, len(cfgs) > 1)
    if args.profile and not args.no_torch:
        for cfg in cfgs:
            profile_table(args, cfg, len(cfgs) > 1)


def print_step_tables(B, gemm, results, split, several):
    print("| model | input | batch | threads | ours img/s | PyTorch img/s | ours / PyTorch | "
          "ours s/step | PyTorch s/step | sgemm GFLOPS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, size, t, m in results:
        pt = (f"{B / m['pt']:.2f} | {m['pt'] / m['dn']:.2f}x" if np.isfinite(m["pt"]) else "- | -")
        print(f"| {name} | {size}x{size} | {B} | {t} | {B / m['dn']:.2f} | {pt} | {m['dn']:.2f} | "
              f"{m['pt']:.2f} | {gemm[t]:.0f} |")
    print("\n(ours / PyTorch > 1: darknet_py is faster)")

    if split:
        print("\nTime split of one step, seconds, medians (darknet_py: forward in training mode with the loss, and "
              "backward, timed in separate calls in the same rounds; its SGD update, one flat loop over the "
              "parameters, is the small rest of the step and too small to separate from the noise. PyTorch: "
              "forward + loss / backward / optimizer step within its timed step)\n")
        model = "| model " if several else ""
        print(f"{model}| input | threads | ours fwd | ours bwd | ours step | PyTorch fwd | PyTorch bwd | "
              "PyTorch update | PyTorch step |")
        print(("|---" if several else "") + "|---|---|---|---|---|---|---|---|---|")
        for name, size, t, m in results:
            model = f"| {name} " if several else ""
            print(f"{model}| {size}x{size} | {t} | {m['dn_f']:.2f} | {m['dn_b']:.2f} | {m['dn']:.2f} | "
                  f"{m.get('pt_f', float('nan')):.2f} | {m.get('pt_b', float('nan')):.2f} | "
                  f"{m.get('pt_u', float('nan')):.2f} | {m['pt']:.2f} |")


def profile_table(args, cfg, several):
    import torch
    torch.set_num_threads(args.profile_threads)
    B = args.batch
    rows, skipped = profile_layers(cfg, B, args.profile_size, args.profile_threads, args.rounds)
    model = f"{os.path.splitext(os.path.basename(cfg))[0]}, " if several else ""
    print(f"\nPer layer, {model}{args.profile_size}x{args.profile_size}, batch {B}, {args.profile_threads} "
          f"thread(s), ms, medians (each layer as its own network, see profile_layers; both backward passes "
          f"compute dL/dinput; ovh = our call overhead, not in the layer columns' ratio)\n")
    print("| layer | type | input | filters size/stride | ours fwd | ours bwd | ovh | PyTorch fwd | PyTorch bwd | "
          "PyTorch / ours (fwd+bwd-ovh) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    tot = {k: 0.0 for k in ("dn_f", "dn_b", "ovh", "pt_f", "pt_b")}

    def ratio(m):
        return (m["pt_f"] + m["pt_b"]) / max(m["dn_f"] + m["dn_b"] - m["ovh"], 1e-9)

    for i, name, shape, desc, m in rows:
        for k in tot:
            tot[k] += m[k]
        print(f"| {i} | {name} | {shape} | {desc} | {m['dn_f'] * 1e3:.0f} | {m['dn_b'] * 1e3:.0f} | "
              f"{m['ovh'] * 1e3:.0f} | {m['pt_f'] * 1e3:.0f} | {m['pt_b'] * 1e3:.0f} | {ratio(m):.2f}x |")
    print(f"| all | | | | {tot['dn_f'] * 1e3:.0f} | {tot['dn_b'] * 1e3:.0f} | {tot['ovh'] * 1e3:.0f} | "
          f"{tot['pt_f'] * 1e3:.0f} | {tot['pt_b'] * 1e3:.0f} | {ratio(tot):.2f}x |")
    if skipped:
        print(f"\n(not in this table: the {', '.join(f'[{s}]' for s in skipped)} layers; "
              f"gN = a grouped conv with N groups)")


if __name__ == "__main__":
    main()
