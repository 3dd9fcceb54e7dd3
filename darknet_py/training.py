"""darknet_py.train(): Darknet's training loop (the C core's, as
`./darknet detector train`) with a progress bar, a callback and a result."""
from dataclasses import dataclass, field
import os
import signal
import threading

from . import _core
from .cfgfile import net_option
from .errors import DarknetIOError, DarknetValueError


@dataclass
class TrainResult:
    """Paths of the weights written and the loss history (one entry per batch)."""
    final: str
    minloss: str
    backup: str
    min_loss: float
    iterations: int
    interrupted: bool
    history: list = field(default_factory=list)  # dicts: iteration, loss, avg_loss, learning_rate, map, ...
    best: str = None          # with map_every: the weights of the best mAP
    best_map: float = None
    minloss_backup: str = None  # with ternary layers: min-loss weights with the float shadow weights

    @property
    def maps(self):
        """(iteration, mAP) of the map_every evaluations."""
        return [(h["iteration"], h["map"]) for h in self.history if h.get("map") is not None]

    @property
    def losses(self):
        return [h["loss"] for h in self.history]


def _gpu_list(gpus):
    """None -> []; 0 -> [0]; "0,1" -> [0, 1]; [0, 1] -> [0, 1]."""
    if gpus is None:
        return []
    if isinstance(gpus, str):
        gpus = [g for g in gpus.split(",") if g.strip()]
    elif isinstance(gpus, int):
        gpus = [gpus]
    try:
        out = [int(g) for g in gpus]
    except (TypeError, ValueError):
        raise DarknetValueError(f"gpus={gpus!r}: expected device numbers such as [0] or [0, 1]") from None
    if any(g < 0 for g in out) or len(set(out)) != len(out):
        raise DarknetValueError(f"gpus={gpus!r}: device numbers must be distinct and >= 0")
    return out


def train(data, cfg, weights=None, *, max_batches=None, backup=None, clear=False, seed=None,
          progress=True, callback=None, threads=None, max_skips=-1, map_every=0, verbose=False,
          gpus=None, letterbox=None, bn_recalibrate=None, average_last=0, teacher=None, distill=1.0):
    """Train a detector as `./darknet detector train data cfg [weights]`.

    map_every=N computes the mAP on the .data file's valid list every N
    iterations (as `-map`), keeps <cfg>_best.weights and draws chart.png
    (average loss and mAP) in the backup folder.

    An image or label file that cannot be read is skipped with a warning and
    counted (stats["skipped"]); max_skips=N (CLI: -max_skips N) turns the
    N+1-th skip into an error (default -1: no limit).
    gpus=[0] trains on CUDA device 0, gpus=[0, 1] data-parallel on two (as
    `-gpus 0,1`; weights averaged every 4 batches); None trains on the CPU.
    A CPU build or a machine without the device raises DarknetError.

    Images are placed on the input as the cfg says (pjreddie's letterbox
    jitter, or AlexeyAB's crop stretched to the input, or letterboxed with
    his letter_box=1); letterbox=True/False overrides it (CLI: -letter_box /
    -no_letter_box).
    bn_recalibrate=None re-estimates the batch-norm statistics at the end
    (population statistics of 512 un-augmented training images) when
    training from scratch, and in a fine-tune when the weights moved
    (relative change > 3e-4) or it ran more than 25 batches: Darknet's
    running averages lag behind moving weights and drift toward the
    statistics of augmented batches, while a short run that leaves the
    weights in place keeps the pretrained statistics. True/False forces it on/off (CLI: -bn_recalibrate 1|0).
    average_last=N makes the final weights the average of the weights after
    each of the last N iterations (CLI: -average_last N), which damps the
    straight-through oscillation of ternary layers at the end.
    teacher=weights or (cfg, weights): knowledge distillation from that
    network (cfg: default this cfg), run in inference mode on each batch; each
    detector layer adds distill times its loss towards the teacher's outputs
    (CLI: -teacher weights -teacher_cfg cfg -distill W; host only).
    clear=True resets the images-seen counter (as -clear), so the cfg's
    burn_in and schedule start again from iteration 0.

    callback(iteration, stats) is called after every batch; returning True stops
    training (a checkpoint is written first). Ctrl-C and SIGTERM (when train
    runs in the main thread) stop the same way.
    Returns a TrainResult with the final/min-loss/backup weights paths."""
    gpu_list = _gpu_list(gpus)
    for p, what in ((data, ".data file"), (cfg, "cfg file")):
        if not os.path.isfile(os.fspath(p)):
            raise DarknetIOError(f"{p}: {what} not found")
    if weights is not None and not os.path.isfile(os.fspath(weights)):
        raise DarknetIOError(f"{weights}: weights file not found")
    teacher_cfg, teacher_w = teacher if isinstance(teacher, (tuple, list)) else (None, teacher)
    for p, what in ((teacher_cfg, "teacher cfg file"), (teacher_w, "teacher weights file")):
        if p is not None and not os.path.isfile(os.fspath(p)):
            raise DarknetIOError(f"{p}: {what} not found")
    if not (float(distill) > 0):
        raise DarknetValueError(f"distill must be > 0, got {distill}")
    total = max_batches or net_option(os.fspath(cfg), "max_batches", 0, int)
    history = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc=os.path.basename(os.fspath(cfg)), unit="batch")

    def on_iteration(stats):
        history.append(stats)
        if bar is not None:
            if bar.n == 0 and stats["iteration"] > 1:
                bar.update(stats["iteration"] - 1)  # resumed from a checkpoint
            bar.update(1)
            post = dict(loss=f'{stats["loss"]:.3f}', avg=f'{stats["avg_loss"]:.3f}',
                        lr=f'{stats["learning_rate"]:.2e}', size=stats["width"])
            if stats.get("map") is not None:
                post["mAP"] = f'{stats["map"]:.3f}'
            bar.set_postfix(**post, refresh=False)
        if terminated:
            return True
        return bool(callback(stats["iteration"], stats)) if callback else False

    terminated = []
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        old_term = signal.signal(signal.SIGTERM, lambda *_: terminated.append(True))
    try:
        r = _core.train(os.fspath(data), os.fspath(cfg),
                        None if weights is None else os.fspath(weights),
                        None if backup is None else os.fspath(backup),
                        int(max_batches or 0), bool(clear), int(seed or 0), int(threads or 0),
                        not verbose, int(max_skips), int(map_every), on_iteration, gpu_list,
                        0 if letterbox is None else (1 if letterbox else -1),
                        0 if bn_recalibrate is None else (1 if bn_recalibrate else -1), int(average_last),
                        None if teacher_w is None else os.fspath(teacher_w),
                        None if teacher_cfg is None else os.fspath(teacher_cfg), float(distill))
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, old_term)
        if bar is not None:
            bar.close()
    return TrainResult(r["final"], r["minloss"], r["backup"], r["min_loss"], r["iterations"],
                       r["interrupted"], history, r["best"], r["best_map"], r["minloss_backup"])
