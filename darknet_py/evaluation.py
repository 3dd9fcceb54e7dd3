"""Evaluating detectors: AP / mAP as `./darknet detector map`, on the C core's
evaluator (csrc/eval/map.c).

    import darknet_py as dn
    r = dn.validate("voc.data", "yolov2-tiny-voc.cfg", "yolov2-tiny-voc.weights")
    print(r)                 # the table `./darknet detector map` prints
    r.map, r.ap["dog"], r.precision, r.recall, r.f1, r.tp, r.fp, r.fn, r.iou

    r = dn.evaluate(detections, ground_truth, classes=["cat", "dog"])

Rules (the PASCAL VOC devkit's): per class, the detections of all images are
ranked by score; each is matched to the same-class object of its image with
the highest IoU: IoU >= iou_thresh and not yet taken -> true positive,
already taken -> false positive (duplicate), difficult -> ignored; otherwise
false positive. AP is the area under the precision/recall curve made monotone
(points=0, VOC2010+), or the mean precision at 11 (VOC2007) or 101 recalls.
mAP averages the classes that have ground truth. TP/FP/FN, precision, recall,
F1 and the average IoU of the true positives count detections with
score > thresh.
"""
from dataclasses import dataclass
import os

import numpy as np

from . import _core
from .network import parse_device
from .names import data_names, data_options, default_names
from .errors import DarknetIOError, DarknetValueError


@dataclass
class ClassResult:
    """One class: AP and the counts at the confidence threshold."""
    class_id: int
    name: str
    ap: float
    truth: int        # non-difficult objects
    difficult: int    # difficult objects (ignored)
    detections: int   # scored entries of this class, any score
    tp: int
    fp: int
    fn: int
    avg_iou: float    # of the true positives

    @property
    def precision(self):
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self):
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


class EvalResult:
    """What `./darknet detector map` reports.

    map: mean AP over the classes with ground truth; ap: {name: AP} of those
    classes; per_class: a ClassResult for every class; precision, recall, f1,
    tp, fp, fn and iou (average IoU of the true positives) at `thresh`.
    detections / ground_truth: when validate(..., return_detections=True), the
    entries that were scored, in evaluate()'s format keyed by image path.
    seconds: {"network": images loaded and forward passes, "decode": decoding
    and NMS, "eval": labels, matching and AP} (validate() only; zeros from
    evaluate()).
    """

    def __init__(self, core_result, names, detections=None, ground_truth=None):
        s = core_result.summary()
        self._core = core_result
        self.names = list(names)
        self.map = s["map"]
        self.precision, self.recall, self.f1 = s["precision"], s["recall"], s["f1"]
        self.tp, self.fp, self.fn = s["tp"], s["fp"], s["fn"]
        self.iou = s["avg_iou"]
        self.iou_thresh, self.thresh, self.points = s["iou_thresh"], s["thresh"], s["points"]
        self.images, self.num_truth, self.num_detections = s["images"], s["truth"], s["detections"]
        self.seconds = {"network": s["seconds_network"], "decode": s["seconds_decode"], "eval": s["seconds_eval"]}
        self.per_class = [ClassResult(i, self.names[i] if i < len(self.names) else str(i), **p)
                          for i, p in enumerate(s["per_class"])]
        self.ap = {c.name: c.ap for c in self.per_class if c.truth > 0}
        self.detections = detections
        self.ground_truth = ground_truth

    def table(self):
        """The report as `./darknet detector map` prints it."""
        return self._core.format(self.names)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return (f"EvalResult(mAP@{self.iou_thresh:.2f}={self.map:.4f}, precision={self.precision:.2f}, "
                f"recall={self.recall:.2f}, F1={self.f1:.2f}, TP={self.tp}, FP={self.fp}, FN={self.fn}, "
                f"images={self.images})")


def _check_points(points):
    if points not in (0, 11, 101):
        raise DarknetValueError(f"points must be 0 (area), 11 or 101, got {points!r}")


def _progress_bar(enabled, desc):
    """A progress(done, total) callable driving a tqdm bar, and its closer."""
    if not enabled:
        return None, lambda: None
    from tqdm.auto import tqdm
    bar = [None]

    def progress(done, total):
        if bar[0] is None:
            bar[0] = tqdm(total=total, desc=desc, unit="img")
        bar[0].update(done - bar[0].n)

    return progress, lambda: bar[0] is not None and bar[0].close()


def validate(data, cfg, weights=None, *, iou_thresh=0.5, thresh=0.25, points=0, progress=True,
             image_list=None, threads=None, device="cpu", return_detections=False, letterbox=None):
    """Run a detector over the .data file's `valid` list (or image_list) and score it
    as `./darknet detector map data cfg weights`: input placed as the cfg says
    (Network.letterbox; letterbox=True/False overrides it, as -letter_box /
    -no_letter_box), boxes decoded at .005 and NMS .45 of the cfg's nms_kind,
    labels from Darknet label files (difficult objects from
    <label>.difficult.txt). weights=None keeps the cfg's random initialisation.
    device: 'cpu', 'cuda' or 'cuda:N', as Network(device=...).

    Returns an EvalResult; with return_detections=True its .detections and
    .ground_truth hold what was scored (pixels, keyed by image path), ready to
    pass to evaluate()."""
    _check_points(points)
    for p, what in ((data, ".data file"), (cfg, "cfg file")):
        if p is not None and not os.path.isfile(os.fspath(p)):
            raise DarknetIOError(f"{p}: {what} not found")
    if weights is not None and not os.path.isfile(os.fspath(weights)):
        raise DarknetIOError(f"{weights}: weights file not found")
    cb, close = _progress_bar(progress, os.path.basename(os.fspath(cfg)))
    try:
        core, images = _core.validate(None if data is None else os.fspath(data), os.fspath(cfg),
                                      None if weights is None else os.fspath(weights),
                                      None if image_list is None else os.fspath(image_list),
                                      float(iou_thresh),
                                      float(thresh), int(points), .005, .45, int(threads or 0),
                                      parse_device(device), cb, bool(return_detections),
                                      _letterbox_arg(letterbox))
    finally:
        close()
    names = data_names(data, core.summary()["classes"])
    dets = truth = None
    if images is not None:
        dets, truth = {}, {}
        for im in images:
            dets[im["path"]] = [(int(r[0]), float(r[1]), tuple(float(v) for v in r[2:6]))
                                for r in im["detections"]]
            truth[im["path"]] = [(int(r[0]), tuple(float(v) for v in r[1:5]), bool(r[5]))
                                 for r in im["truth"]]
    return EvalResult(core, names, dets, truth)


def _letterbox_arg(letterbox):
    """None (the cfg's placement) / True / False -> -1 / 1 / 0."""
    return -1 if letterbox is None else int(bool(letterbox))


def write_results(data, cfg, weights=None, *, out_dir=None, prefix="comp4_det_test_", image_list=None,
                  threads=None, device="cpu", progress=True, letterbox=None):
    """`./darknet detector valid`: write <out_dir>/<prefix><class name>.txt with lines
    `image_id score xmin ymin xmax ymax` (VOC's 1-based pixels) for external VOC
    tools. out_dir None: the .data file's `results`, else results/. device as validate."""
    if weights is not None and not os.path.isfile(os.fspath(weights)):
        raise DarknetIOError(f"{weights}: weights file not found")
    opts = data_options(data)
    names = data_names(data, 20 if opts.get("classes") == "20" else 0)
    if not opts.get("names") and opts.get("classes") != "20":
        names = []  # numbers, as ./darknet detector valid
    cb, close = _progress_bar(progress, os.path.basename(os.fspath(cfg)))
    try:
        _core.write_results(None if data is None else os.fspath(data), os.fspath(cfg),
                            None if weights is None else os.fspath(weights),
                            None if image_list is None else os.fspath(image_list),
                            None if out_dir is None else os.fspath(out_dir), prefix, names,
                            .005, .45, int(threads or 0), parse_device(device), cb, _letterbox_arg(letterbox))
    finally:
        close()


def _class_index(c, index, where):
    if isinstance(c, str):
        if index is None or c not in index:
            raise DarknetValueError(f"{where}: unknown class {c!r} (pass classes=[names...] to use names)")
        return index[c]
    if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)):
        raise DarknetValueError(f"{where}: class must be an int id or a name, got {c!r}")
    return int(c)


def _box(b, where):
    try:
        x1, y1, x2, y2 = (float(v) for v in b)
    except (TypeError, ValueError):
        raise DarknetValueError(f"{where}: box must be (x1, y1, x2, y2), got {b!r}") from None
    if not (x2 >= x1 and y2 >= y1):
        raise DarknetValueError(f"{where}: box {b!r} has x2 < x1 or y2 < y1")
    return x1, y1, x2, y2


def evaluate(detections, ground_truth, *, classes=None, iou_thresh=0.5, thresh=0.25, points=0):
    """Score detections against ground truth with the same evaluator as validate().

    detections:   {image_id: [(class, score, (x1, y1, x2, y2)), ...]}; items may also be
                  darknet_py.Detection objects (class_id, confidence, box).
    ground_truth: {image_id: [(class, (x1, y1, x2, y2)) or (class, (x1, y1, x2, y2), difficult), ...]}
    image_id: any hashable (e.g. a path); an image may be missing from either dict.
    class: an int id, or a name when classes is a list of names.
    Boxes are corners in any unit, the same for both (IoU is continuous: x2 - x1 is the width).
    classes: None (max id + 1), a count, or a list of names.
    Returns an EvalResult (its table() is the `detector map` report)."""
    _check_points(points)
    names = index = None
    if classes is not None and not isinstance(classes, (int, np.integer)):
        names = [str(n) for n in classes]
        index = {n: i for i, n in enumerate(names)}
    images = {}
    truth_rows, det_rows = [], []
    for image_id, objs in ground_truth.items():
        img = images.setdefault(image_id, len(images))
        for k, o in enumerate(objs):
            where = f"ground_truth[{image_id!r}][{k}]"
            if not 2 <= len(o) <= 3:
                raise DarknetValueError(f"{where}: expected (class, box) or (class, box, difficult), got {o!r}")
            c = _class_index(o[0], index, where)
            truth_rows.append((img, c, *_box(o[1], where), float(bool(o[2]) if len(o) > 2 else 0)))
    for image_id, dets in detections.items():
        img = images.setdefault(image_id, len(images))
        for k, d in enumerate(dets):
            where = f"detections[{image_id!r}][{k}]"
            if hasattr(d, "class_id") and hasattr(d, "confidence"):
                d = (d.class_id, d.confidence, d.box)
            if len(d) != 3:
                raise DarknetValueError(f"{where}: expected (class, score, box), got {d!r}")
            c = _class_index(d[0], index, where)
            det_rows.append((img, c, float(d[1]), *_box(d[2], where)))
    if names is None:
        n = int(classes) if classes is not None else 1 + max(
            [r[1] for r in truth_rows] + [r[1] for r in det_rows] + [0])
        names = default_names(n)
    truth = np.array(truth_rows, dtype=np.float64).reshape(-1, 7)
    dets = np.array(det_rows, dtype=np.float64).reshape(-1, 7)
    core = _core.evaluate(truth, dets, len(names), float(iou_thresh), float(thresh), int(points))
    return EvalResult(core, names)
