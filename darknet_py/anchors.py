"""darknet_py.calc_anchors(): anchor boxes for a data set, as AlexeyAB's
`darknet detector calc_anchors` (the C core's k-means with distance 1 - IoU)."""
from dataclasses import dataclass
import os

import numpy as np

from . import _core
from .names import data_options
from .errors import DarknetIOError, DarknetValueError


@dataclass
class Anchors:
    """k-means anchors: (w, h) rows in pixels of the width x height input,
    sorted by area; avg_iou: the boxes' mean best IoU with them."""
    anchors: np.ndarray
    avg_iou: float
    boxes: int
    width: int
    height: int

    def cfg(self, stride=None):
        """The value of a cfg's anchors = line: pixels for [yolo], or in cells
        of stride pixels for [region] (YOLOv2: stride=32)."""
        if stride is None:
            return ", ".join(f"{w:.0f},{h:.0f}" for w, h in self.anchors)
        return ", ".join(f"{w / stride:.4f},{h / stride:.4f}" for w, h in self.anchors)


def calc_anchors(data, n=9, width=416, height=416, *, image_list=None):
    """Anchors for the .data file's train list (or image_list): n clusters of
    the labelled boxes' sizes at a width x height input."""
    data = os.fspath(data)
    if not os.path.isfile(data):
        raise DarknetIOError(f"{data}: .data file not found")
    opts = data_options(data)
    lst = os.fspath(image_list) if image_list is not None else opts.get("train")
    if not lst:
        raise DarknetValueError(f"{data}: no train list (pass image_list=...)")
    classes = int(opts.get("classes", "0") or 0)
    a, iou, boxes = _core.calc_anchors(lst, classes, int(n), int(width), int(height))
    return Anchors(a, float(iou), int(boxes), int(width), int(height))
