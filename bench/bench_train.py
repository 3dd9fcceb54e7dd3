#!/usr/bin/env python3
"""Training speed (forward + backward + SGD update) in images per second,
darknet_py vs the same network in PyTorch on the CPU, side by side in one
run; prints markdown tables.

darknet_py: Network(cfg, batch=B), resized to each input size, set_train(True),
then train_step(images, truth) over B images (one sub-batch, one update):
the cfg's own loss layer ([region] for yolov2-tiny-voc), momentum and decay.
PyTorch: an nn.Sequential built from the same cfg (conv without bias +
BatchNorm2d + LeakyReLU(0.1) where batch_normalize=1, conv with bias
otherwise; maxpool with Darknet's padding: size-1 pixels of -inf, split
left/top = (size-1)//2 and the rest right/bottom, so that the size-2
stride-1 pool keeps 13x13), MSE to a fixed random target of the output's
shape as the loss (the loss's cost is negligible next to the network's),
torch.optim.SGD(momentum=0.9, weight_decay=0.0005), torch.set_num_threads(T).
Only cfgs that are a plain chain of [convolutional] and [maxpool] layers
ending in a loss layer can be built in PyTorch.

Synthetic data: the same random images (and, for darknet_py, the same
random boxes) every step; no data loading, no augmentation in either.
Timing: warm-up steps, then rounds in which the two frameworks alternate
(each followed by a short pause so that spinning BLAS/OpenMP threads settle),
so load changes on a shared machine hit both alike; medians over rounds.
The machine's plain sgemm GFLOPS (NumPy matmul in a subprocess, as in
bench_conv.py) is measured in the same run for scale.

--split adds darknet_py's forward (training mode, loss included) and
backward timed in separate calls (net._net.forward, net._net.backward) in
the same rounds, next to PyTorch's forward+loss / backward / optimizer step.
Our backward there also computes dL/d(input image), which train_step skips
(one extra GEMM + col2im on the first layer), so fwd + bwd can come out a
little above the step.
--profile (or --profile-only) adds a per-layer table: every
[convolutional] and [maxpool] layer as its own one-layer network at its
input shape and batch B, training forward and backward (with dL/d(input)),
next to the same PyTorch block (see profile_layers).

  python3 bench/bench_train.py [--cfg PATH] [--sizes 416,224] [--threads 1,2]
                               [--batch 16] [--rounds 5] [--warmup 2] [--split]
                               [--profile | --profile-only] [--profile-size 416]
                               [--profile-threads 1] [--no-torch]

Depends on darknet_py, numpy and torch (pip install torch==2.13.0, the CPU
wheel).
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
PAUSE = 0.3  # seconds between the two frameworks' steps


# ---------------------------------------------------------------- PyTorch side

def torch_layers(secs, channels):
    """[(kind, module, in_shape_fn)] for a chain of conv / maxpool sections.
    Raises ValueError on any other layer type (except a final loss layer)."""
    import torch.nn as nn
    import torch.nn.functional as F

    class DarknetMaxPool(nn.Module):
        """Darknet's maxpool: size-1 pixels of -inf padding, (size-1)//2 on
        the left/top and the rest on the right/bottom, then floor division."""

        def __init__(self, size, stride, padding):
            super().__init__()
            self.lo, self.hi = padding // 2, padding - padding // 2
            self.pool = nn.MaxPool2d(size, stride)

        def forward(self, x):
            if self.lo or self.hi:
                x = F.pad(x, (self.lo, self.hi, self.lo, self.hi), value=float("-inf"))
            return self.pool(x)

    out, c = [], channels
    for name, o in secs:
        if name in ("convolutional", "conv"):
            k, s = int(o.get("size", 1)), int(o.get("stride", 1))
            pad = k // 2 if int(o.get("pad", 0)) else int(o.get("padding", 0))
            f, bn = int(o["filters"]), int(o.get("batch_normalize", 0))
            if int(o.get("groups", 1)) != 1:
                raise ValueError("grouped conv not built here")
            mods = [nn.Conv2d(c, f, k, s, pad, bias=not bn)]
            if bn:
                mods.append(nn.BatchNorm2d(f))
            act = o.get("activation", "logistic")
            if act == "leaky":
                mods.append(nn.LeakyReLU(0.1))
            elif act != "linear":
                raise ValueError(f"activation {act} not built here")
            out.append(("conv", nn.Sequential(*mods)))
            c = f
        elif name in ("maxpool", "max"):
            k = int(o.get("size", 1))
            s = int(o.get("stride", k))
            out.append(("maxpool", DarknetMaxPool(k, s, int(o.get("padding", k - 1)))))
        elif name in LOSS_LAYERS:
            break
        else:
            raise ValueError(f"[{name}] has no PyTorch equivalent here")
    return out


def torch_model(cfg):
    import torch.nn as nn
    secs = read_cfg(cfg)
    return nn.Sequential(*[m for _, m in torch_layers(secs[1:], int(secs[0][1].get("channels", 3)))])


class TorchTrainer:
    """One SGD step on a fixed batch; records forward+loss / backward / step times."""

    def __init__(self, cfg, x, lr=1e-3):
        import torch
        self.torch = torch
        self.model = torch_model(cfg)
        self.model.train()
        self.x = torch.from_numpy(x)
        with torch.no_grad():
            y = self.model(self.x)
        self.target = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9, weight_decay=0.0005)
        self.parts = {"fwd": [], "bwd": [], "upd": []}

    def step(self):
        F = self.torch.nn.functional
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=False)
        loss = F.mse_loss(self.model(self.x), self.target)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        self.opt.step()
        t3 = time.perf_counter()
        self.parts["fwd"].append(t1 - t0)
        self.parts["bwd"].append(t2 - t1)
        self.parts["upd"].append(t3 - t2)
        return loss.item()


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

def chain_shapes(secs, c, h, w):
    """[(index, name, opts, (c, h, w) in)] for the conv / maxpool chain."""
    out = []
    for i, (name, o) in enumerate(secs):
        out.append((i, name, o, (c, h, w)))
        if name in ("convolutional", "conv"):
            k, s = int(o.get("size", 1)), int(o.get("stride", 1))
            pad = k // 2 if int(o.get("pad", 0)) else int(o.get("padding", 0))
            c = int(o["filters"])
            h, w = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
        elif name in ("maxpool", "max"):
            k = int(o.get("size", 1))
            s = int(o.get("stride", k))
            p = int(o.get("padding", k - 1))
            h, w = (h + p - k) // s + 1, (w + p - k) // s + 1
        else:
            break
    return out


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
    """Per layer of the conv / maxpool chain: darknet_py's training forward
    and backward, and the same PyTorch block's forward and backward (both
    with dL/dinput), interleaved; median seconds.

    Each layer runs as its own darknet_py network followed by a 1x1
    stride-W conv with one filter (the sink, as in bench_conv.py), so that
    the layer's output is not copied to Python; the layer's delta then comes
    from the sink (no kernel skips zeros, so the timing is the same). The
    call overhead -- the sink, the dL/dinput array returned to Python (a
    fresh allocation of the layer's input size) and its clearing -- is timed
    on a sink-only network of the same input shape, in the same rounds, and
    reported apart ("ovh")."""
    import torch
    secs = read_cfg(cfg)
    chain = chain_shapes(secs[1:], int(secs[0][1].get("channels", 3)), size, size)
    tl = torch_layers([(n, o) for _, n, o, _ in chain], int(secs[0][1].get("channels", 3)))
    tmp = tempfile.mkdtemp(prefix="bench_train_")
    atexit.register(shutil.rmtree, tmp, True)  # the temporary cfgs and weights
    rng = np.random.default_rng(1)
    rows = []
    for (i, name, o, (c, h, w)), (kind, mod) in zip(chain, tl):
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
        desc = (f"{o.get('filters')} {o.get('size', 1)}x{o.get('size', 1)}/{o.get('stride', 1)}"
                if kind == "conv" else f"{o.get('size')}/{o.get('stride')}")
        rows.append((i, name, f"{c}x{h}x{w}", desc, med))
        del nets
        gc.collect()
    return rows


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfg", default=DEFAULT_CFG)
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
    args = ap.parse_args()

    sizes = [] if args.profile_only else [int(s) for s in args.sizes.split(",")]
    args.profile |= args.profile_only
    threads = [int(t) for t in args.threads.split(",")]
    name = os.path.splitext(os.path.basename(args.cfg))[0]
    if not args.no_torch:
        import torch
        torch_model(args.cfg)  # fails early on a cfg PyTorch cannot mirror
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
    for size in sizes:
        rng = np.random.default_rng(0)
        x = rng.random((B, 3, size, size), dtype=np.float32)
        for t in threads:
            net = dn_trainer(args.cfg, B, size, t)
            truth = random_truth(B, dn_classes(net), rng)
            pt = None
            if not args.no_torch:
                torch.set_num_threads(t)
                torch.manual_seed(0)
                pt = TorchTrainer(args.cfg, x)
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
                print(f"warning: darknet_py loss not finite at {size}, {t} threads: {losses}", file=sys.stderr)
            med = {k: (statistics.median(v) if v else float("nan")) for k, v in ts.items()}
            if pt:
                for k, v in pt.parts.items():
                    med["pt_" + k[0]] = statistics.median(v)
            results.append((size, t, med))
            print(f"  {name} {size} {t} thr: ours {med['dn']:.2f} s/step, PyTorch {med['pt']:.2f} s/step",
                  file=sys.stderr)
            del net, pt
            gc.collect()

    if results:
        print_step_tables(name, B, gemm, results, args.split)
    if args.profile and not args.no_torch:
        profile_table(args)


def print_step_tables(name, B, gemm, results, split):
    print("| model | input | batch | threads | ours img/s | PyTorch img/s | ours / PyTorch | "
          "ours s/step | PyTorch s/step | sgemm GFLOPS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, t, m in results:
        pt = (f"{B / m['pt']:.2f} | {m['pt'] / m['dn']:.2f}x" if np.isfinite(m["pt"]) else "- | -")
        print(f"| {name} | {size}x{size} | {B} | {t} | {B / m['dn']:.2f} | {pt} | {m['dn']:.2f} | "
              f"{m['pt']:.2f} | {gemm[t]:.0f} |")
    print("\n(ours / PyTorch > 1: darknet_py is faster)")

    if split:
        print("\nTime split of one step, seconds, medians (darknet_py: forward in training mode with the loss, and "
              "backward, timed in separate calls in the same rounds; its SGD update, one flat loop over the "
              "parameters, is the small rest of the step and too small to separate from the noise. PyTorch: "
              "forward + loss / backward / optimizer step within its timed step)\n")
        print("| input | threads | ours fwd | ours bwd | ours step | PyTorch fwd | PyTorch bwd | PyTorch update | "
              "PyTorch step |")
        print("|---|---|---|---|---|---|---|---|---|")
        for size, t, m in results:
            print(f"| {size}x{size} | {t} | {m['dn_f']:.2f} | {m['dn_b']:.2f} | {m['dn']:.2f} | "
                  f"{m.get('pt_f', float('nan')):.2f} | {m.get('pt_b', float('nan')):.2f} | "
                  f"{m.get('pt_u', float('nan')):.2f} | {m['pt']:.2f} |")


def profile_table(args):
    import torch
    torch.set_num_threads(args.profile_threads)
    B = args.batch
    rows = profile_layers(args.cfg, B, args.profile_size, args.profile_threads, args.rounds)
    print(f"\nPer layer, {args.profile_size}x{args.profile_size}, batch {B}, {args.profile_threads} "
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


if __name__ == "__main__":
    main()
