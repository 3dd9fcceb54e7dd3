"""Detections and darknet_py.detect(): a detector over images, folders or
lists, as `./darknet detector test`, with results that draw, save and export
themselves (boxes drawn by the C core's `detector test` code)."""
from dataclasses import dataclass
import glob
import os

import numpy as np

from . import _core
from .errors import DarknetIOError, DarknetValueError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tga", ".gif", ".ppm", ".pgm")
LIST_EXTENSIONS = (".txt", ".list")


@dataclass
class Detection:
    """One detected object; box corners are in pixels of the original image."""
    label: str
    class_id: int
    confidence: float
    box: tuple  # (left, top, right, bottom)

    @property
    def xywh(self):
        l, t, r, b = self.box
        return ((l + r) / 2, (t + b) / 2, r - l, b - t)


class DetectResult(list):
    """The detections of one image, by confidence (a list of Detection), with
    the image's path (None for an array), width, height and class names.

    >>> r = net.detect("dog.jpg")
    >>> r.boxes, r.confidences, r.class_ids     # NumPy arrays, one row per detection
    >>> r.save("dog-boxes.png"); r.to_dict(); r.label_lines()
    """

    def __init__(self, detections=(), *, path=None, width=0, height=0, names=(), image=None):
        super().__init__(detections)
        self.path, self.width, self.height = path, int(width), int(height)
        self.names = list(names)
        self._image = image

    def __repr__(self):
        where = self.path if self.path is not None else "array"
        return f"DetectResult({where!r}, {self.width}x{self.height}, {len(self)} detections)"

    @property
    def boxes(self):
        """n x 4 float64 array of (left, top, right, bottom) in pixels."""
        return np.array([d.box for d in self], dtype=np.float64).reshape(-1, 4)

    @property
    def confidences(self):
        return np.array([d.confidence for d in self], dtype=np.float64)

    @property
    def class_ids(self):
        return np.array([d.class_id for d in self], dtype=np.int64)

    def image(self):
        """The original image, H x W x 3 uint8 (read again from path)."""
        if self._image is not None:
            return self._image
        if self.path is None:
            raise DarknetValueError("DetectResult.image: no image array or path to read it from")
        return _core.load_image(os.fspath(self.path))

    def plot(self, image=None):
        """A copy of the image with the boxes drawn as `detector test` draws
        them: one box per distinct box, labelled with its classes' names, in
        the colour of its smallest class id."""
        image = self.image() if image is None else np.ascontiguousarray(image, dtype=np.uint8)
        groups = {}
        for d in self:
            groups.setdefault(tuple(d.box), []).append(d)
        boxes, ids, labels = [], [], []
        for box, ds in groups.items():
            ds = sorted(ds, key=lambda d: d.class_id)
            boxes.append(box)
            ids.append(ds[0].class_id)
            labels.append(", ".join(d.label for d in ds))
        classes = max(len(self.names), max(ids, default=0) + 1)
        return _core.draw_boxes(image, np.asarray(boxes, dtype=np.float64).reshape(-1, 4), ids,
                                classes, labels)

    def save(self, path):
        """Write plot() as a PNG file (atomically)."""
        _core.save_png(self.plot(), os.fspath(path))

    def _relative(self, d):
        l, t, r, b = d.box
        return ((l + r) / 2 / self.width, (t + b) / 2 / self.height,
                (r - l) / self.width, (b - t) / self.height)

    def to_dict(self, frame_id=1):
        """The record of `darknet detector test -out result.json` (AlexeyAB's
        format): frame_id, filename, objects with class_id, name,
        relative_coordinates (center_x, center_y, width, height) and confidence."""
        objects = []
        for d in self:
            cx, cy, w, h = self._relative(d)
            objects.append({"class_id": d.class_id, "name": d.label,
                            "relative_coordinates": {"center_x": cx, "center_y": cy,
                                                     "width": w, "height": h},
                            "confidence": d.confidence})
        return {"frame_id": frame_id, "filename": self.path, "objects": objects}

    def label_lines(self):
        """Darknet label lines "class cx cy w h" (relative to the image), as
        `darknet detector test -save_labels` writes them."""
        return ["%d %.6f %.6f %.6f %.6f" % ((d.class_id,) + self._relative(d)) for d in self]


def image_sources(source):
    """The images of source: an image path, a folder (its images, sorted), a
    list file (.txt/.list: one path per line), a glob pattern, an H x W x 3
    uint8 array, or a list of these. Returns a list of paths and arrays."""
    if isinstance(source, np.ndarray):
        return [source]
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            return sorted(os.path.join(path, f) for f in os.listdir(path)
                          if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(path, f)))
        if os.path.isfile(path):
            if path.lower().endswith(LIST_EXTENSIONS):
                with open(path) as f:
                    return [l.strip() for l in f if l.strip()]
            return [path]
        if glob.has_magic(path):
            matches = sorted(glob.glob(path))
            if not matches:
                raise DarknetIOError(f"{path}: no file matches")
            return matches
        raise DarknetIOError(f"{path}: no such image, folder or list file")
    try:
        items = list(source)
    except TypeError:
        raise TypeError(f"detect: source must be a path, an array or a list of these, got "
                        f"{type(source).__name__}") from None
    return [x for item in items for x in image_sources(item)]


def _png_name(save_dir, item, i):
    stem = os.path.splitext(os.path.basename(item))[0] if isinstance(item, str) else f"image_{i}"
    return os.path.join(save_dir, stem + ".png")


def _write_labels(result):
    path = _core.label_path(result.path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(line + "\n" for line in result.label_lines())
    os.replace(tmp, path)


def detect(cfg, weights, source, *, thresh=0.25, nms=0.45, names=None, device="cpu",
           ternary_kernel="off", threads=None, save_dir=None, save_labels=False, progress=True, letterbox=None):
    """Run a detector over images, as `./darknet detector test data cfg weights`.

    source: an image path, a folder, a list file (.txt), a glob pattern, an
    H x W x 3 uint8 RGB array, or a list of these. names: a list, a .names
    file or a .data file (default: VOC's names for 20 classes). save_dir:
    write each image with its boxes drawn as <save_dir>/<name>.png.
    save_labels: write Darknet label files where training looks for them
    (images/ -> labels/, .jpg -> .txt), as `-save_labels`. letterbox:
    None places images as the cfg says (Network.letterbox), True/False
    letterboxes/stretches (as -letter_box / -no_letter_box).

    Returns one DetectResult (a list of Detection) per image, in order.
    """
    from .network import Network
    items = image_sources(source)
    if save_labels and any(not isinstance(x, str) for x in items):
        raise DarknetValueError("detect: save_labels needs image paths, not arrays")
    net = Network(cfg, weights, names=names, threads=threads, ternary_kernel=ternary_kernel,
                  device=device, letterbox=letterbox)
    if save_dir is not None:
        os.makedirs(os.fspath(save_dir), exist_ok=True)
    bar = None
    if progress and len(items) > 1:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(items), desc="detect", unit="img")
    results = []
    try:
        for i, item in enumerate(items):
            r = net.detect(item, thresh=thresh, nms=nms)
            if save_dir is not None:
                r.save(_png_name(os.fspath(save_dir), item, i))
            if save_labels:
                _write_labels(r)
            if isinstance(item, str):
                r._image = None  # read again when asked for: a folder's images are not all kept
            results.append(r)
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    return results
