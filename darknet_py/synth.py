"""A synthetic detection data set in PASCAL VOC format: flat shapes on textured
backgrounds, small and fast enough for learning tests and demos on a laptop CPU.

Conventions:
- Class k is shape SHAPES[k]; a data set with K classes uses the first K shapes.
- Boxes are VOC boxes: (xmin, ymin, xmax, ymax) in 1-based, inclusive pixel
  coordinates, tight around the drawn pixels (taken from the shape's mask).
- Everything is drawn from numpy Generators seeded from (seed, image index), so a
  seed gives the same bytes on every run, and image i does not depend on how many
  images are generated.

Layout written by make_synthetic_voc(out):
    out/VOCdevkit/VOC2007/JPEGImages/<id>.jpg
    out/VOCdevkit/VOC2007/Annotations/<id>.xml
    out/VOCdevkit/VOC2007/ImageSets/Main/{train,val}.txt
    out/synth.names

Pure Python + numpy + PIL (no darknet_py._core).
"""
import math
import os
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image, ImageDraw
from .errors import DarknetValueError

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond", "star", "hbar", "vbar",
          "hexagon")

# Class colours for easy_colors=True (one hue per class; objects jitter around it).
CLASS_COLORS = ((230, 40, 40), (40, 200, 60), (40, 80, 235), (240, 220, 30), (220, 50, 220),
                (40, 220, 220), (250, 140, 20), (120, 40, 180), (250, 250, 250), (15, 15, 15))

MIN_SCALE, MAX_SCALE = 0.15, 0.50  # object's longer side as a fraction of the image side
MAX_IOU = 0.3                      # limit on the overlap between two objects of an image,
MAX_COVER = 0.5                    # and on the part of either box inside the other
PLACEMENT_TRIES = 60               # tries per object before giving up on it
JPEG_QUALITY = 90
PROGRESS_MIN_IMAGES = 200          # fewer images than this get no progress bar
FOLDER = "VOC2007"


# ---------------------------------------------------------------------------- shapes
# Each function draws a shape filling the box (x0, y0, x1, y1) (0-based, floats) with 255
# on an 'L' mask.

def _poly(cx, cy, rx, ry, n, phase, inner=None):
    """Vertices of a regular n-gon (or a 2n-point star when inner is a radius fraction)."""
    pts = []
    k = 2 * n if inner else n
    for i in range(k):
        a = phase + 2 * math.pi * i / k
        r = inner if inner and i % 2 else 1.0
        pts.append((cx + rx * r * math.cos(a), cy + ry * r * math.sin(a)))
    return pts


def _circle(d, x0, y0, x1, y1):
    d.ellipse((x0, y0, x1, y1), fill=255)


def _square(d, x0, y0, x1, y1):
    d.rectangle((x0, y0, x1, y1), fill=255)


def _triangle(d, x0, y0, x1, y1):
    d.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=255)


def _cross(d, x0, y0, x1, y1):
    tw, th = (x1 - x0) / 3, (y1 - y0) / 3
    d.rectangle((x0 + tw, y0, x1 - tw, y1), fill=255)
    d.rectangle((x0, y0 + th, x1, y1 - th), fill=255)


def _ring(d, x0, y0, x1, y1):
    tw, th = (x1 - x0) * 0.22, (y1 - y0) * 0.22
    d.ellipse((x0, y0, x1, y1), fill=255)
    d.ellipse((x0 + tw, y0 + th, x1 - tw, y1 - th), fill=0)


def _diamond(d, x0, y0, x1, y1):
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    d.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=255)


def _star(d, x0, y0, x1, y1):
    d.polygon(_poly((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2, 5,
                    -math.pi / 2, inner=0.42), fill=255)


def _hexagon(d, x0, y0, x1, y1):
    d.polygon(_poly((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2, 6, 0.0),
              fill=255)


# name -> (draw function, aspect = width / height of the box it is drawn in)
_SHAPE_TABLE = {
    "circle": (_circle, 1.0), "square": (_square, 1.0), "triangle": (_triangle, 1.0),
    "cross": (_cross, 1.0), "ring": (_ring, 1.0), "diamond": (_diamond, 1.0),
    "star": (_star, 1.0), "hbar": (_square, 3.0), "vbar": (_square, 1 / 3.0),
    "hexagon": (_hexagon, 1.0),
}


# ---------------------------------------------------------------------------- images

def _background(size, rng):
    """size x size x 3 float array: smooth noise, a gradient or stripes between two muted
    colours, plus a little grain."""
    def muted():
        return rng.uniform(50, 200) + rng.uniform(-25, 25, 3)
    c1, c2 = muted(), muted()
    kind = rng.integers(3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    if kind == 0:
        cells = int(rng.integers(3, 9))
        low = (rng.random((cells, cells)) * 255).astype(np.uint8)
        t = np.asarray(Image.fromarray(low).resize((size, size), Image.BICUBIC),
                       np.float64) / 255.0
    elif kind == 1:
        a = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(a) + yy * math.sin(a)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    else:
        a = rng.uniform(0, math.pi)
        periods = rng.uniform(3, 14)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * periods * (xx * math.cos(a) + yy * math.sin(a)))
    img = c1 + t[..., None] * (c2 - c1)
    img += rng.normal(0, 4, img.shape)
    return img


def _area(r):
    return (r[2] - r[0] + 1) * (r[3] - r[1] + 1)


def _overlap(a, b):
    """(IoU, intersection / smaller area) of two 0-based inclusive boxes."""
    ix = min(a[2], b[2]) - max(a[0], b[0]) + 1
    iy = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if ix <= 0 or iy <= 0:
        return 0.0, 0.0
    inter = ix * iy
    return inter / (_area(a) + _area(b) - inter), inter / min(_area(a), _area(b))


def _fits(box, boxes):
    for b in boxes:
        iou, cover = _overlap(box, b)
        if iou >= MAX_IOU or cover >= MAX_COVER:
            return False
    return True


def _object_color(cls, easy_colors, background_mean, rng):
    if easy_colors:
        base = np.asarray(CLASS_COLORS[cls], np.float64)
        return np.clip(base + rng.uniform(-20, 20, 3), 0, 255)
    color = rng.uniform(0, 256, 3)
    for _ in range(20):  # keep some contrast with the background under the object
        if np.abs(color - background_mean).mean() > 60:
            break
        color = rng.uniform(0, 256, 3)
    return color


def _check_classes(classes):
    if not 1 <= classes <= len(SHAPES):
        raise DarknetValueError(f"classes must be between 1 and {len(SHAPES)}, got {classes}")


def make_image(classes, size, rng, easy_colors=True, min_objects=1, max_objects=4):
    """Draw one image with min_objects..max_objects shapes of the first `classes` classes.

    rng is a numpy Generator. Returns (uint8 array size x size x 3, objects) with objects a
    list of (class_id, xmin, ymin, xmax, ymax) in VOC's 1-based inclusive pixel coordinates.
    Objects overlap little (box IoU < MAX_IOU, and less than MAX_COVER of either box
    inside the other), so none is hidden; an object that finds no such place in
    PLACEMENT_TRIES tries is left out, so an image can hold fewer than min_objects
    (never none: the first object always fits).
    """
    _check_classes(classes)
    if size < 32:
        raise DarknetValueError(f"size must be at least 32, got {size}")
    if not 1 <= min_objects <= max_objects:
        raise DarknetValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    img = _background(size, rng)
    n = int(rng.integers(min_objects, max_objects + 1))
    boxes = []  # 0-based inclusive (x0, y0, x1, y1)
    objects = []
    for _ in range(n):
        cls = int(rng.integers(classes))
        draw_fn, aspect = _SHAPE_TABLE[SHAPES[cls]]
        for _ in range(PLACEMENT_TRIES):
            side = rng.uniform(MIN_SCALE, MAX_SCALE) * size
            asp = aspect * (rng.uniform(0.8, 1.25) if aspect == 1.0 else rng.uniform(0.9, 1.1))
            w, h = (side, side / asp) if asp >= 1 else (side * asp, side)
            x0 = rng.uniform(0, size - 1 - w)
            y0 = rng.uniform(0, size - 1 - h)
            mask = Image.new("L", (size, size), 0)
            draw_fn(ImageDraw.Draw(mask), x0, y0, x0 + w, y0 + h)
            m = np.asarray(mask) > 127
            rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
            if rows.size == 0:
                continue
            box = (int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1]))
            if _fits(box, boxes):
                break
        else:
            continue
        color = _object_color(cls, easy_colors, img[m].mean(axis=0), rng)
        img[m] = color
        boxes.append(box)
        objects.append((cls, box[0] + 1, box[1] + 1, box[2] + 1, box[3] + 1))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), objects


# ---------------------------------------------------------------------------- data set

def _annotation_xml(filename, size, objects, names):
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = FOLDER
    ET.SubElement(root, "filename").text = filename
    src = ET.SubElement(root, "source")
    ET.SubElement(src, "database").text = "darknet_py synthetic shapes"
    sz = ET.SubElement(root, "size")
    for tag, v in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(sz, tag).text = str(v)
    ET.SubElement(root, "segmented").text = "0"
    for cls, x0, y0, x1, y1 in objects:
        o = ET.SubElement(root, "object")
        ET.SubElement(o, "name").text = names[cls]
        ET.SubElement(o, "pose").text = "Unspecified"
        ET.SubElement(o, "truncated").text = "0"
        ET.SubElement(o, "difficult").text = "0"
        bb = ET.SubElement(o, "bndbox")
        for tag, v in (("xmin", x0), ("ymin", y0), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(bb, tag).text = str(v)
    ET.indent(root, "\t")
    return ET.tostring(root, encoding="unicode") + "\n"


def _write_lines(path, lines):
    with open(path, "w") as f:
        f.writelines(line + "\n" for line in lines)


def make_synthetic_voc(out, images=200, classes=5, size=224, seed=0, split=0.8,
                       min_objects=1, max_objects=4, easy_colors=True, progress=False):
    """Write a synthetic VOC2007-layout data set under out/VOCdevkit (see module docstring).

    split is the fraction of images in train (the rest is val), rounded to the nearest
    image. easy_colors=True ties each class to a colour (a tiny model learns it in
    minutes); False draws each object in a random colour so only the shape tells the class.
    progress=True shows a progress bar (tqdm) for PROGRESS_MIN_IMAGES images or more.
    Returns dict(devkit, names_file, names, train, val) with the image id lists.
    """
    _check_classes(classes)
    if images < 1:
        raise DarknetValueError(f"images must be at least 1, got {images}")
    if not 0.0 <= split <= 1.0:
        raise DarknetValueError(f"split must be in [0, 1], got {split}")
    if seed < 0:
        raise DarknetValueError(f"seed must be non-negative, got {seed}")
    out = os.path.abspath(os.fspath(out))
    year_dir = os.path.join(out, "VOCdevkit", FOLDER)
    dirs = {k: os.path.join(year_dir, *k.split("/"))
            for k in ("JPEGImages", "Annotations", "ImageSets/Main")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    names = list(SHAPES[:classes])

    ids = [f"{i:06d}" for i in range(images)]
    items = enumerate(ids)
    if progress and images >= PROGRESS_MIN_IMAGES:
        try:
            from tqdm import tqdm
            items = tqdm(items, total=images, desc="synthetic images", unit="img")
        except ImportError:
            pass
    for i, image_id in items:
        rng = np.random.default_rng([seed, 1, i])
        arr, objects = make_image(classes, size, rng, easy_colors, min_objects, max_objects)
        Image.fromarray(arr).save(os.path.join(dirs["JPEGImages"], image_id + ".jpg"),
                                  quality=JPEG_QUALITY)
        with open(os.path.join(dirs["Annotations"], image_id + ".xml"), "w") as f:
            f.write(_annotation_xml(image_id + ".jpg", size, objects, names))

    n_train = int(math.floor(images * split + 0.5))
    order = np.random.default_rng([seed, 0]).permutation(images)
    train = sorted(ids[k] for k in order[:n_train])
    val = sorted(ids[k] for k in order[n_train:])
    _write_lines(os.path.join(dirs["ImageSets/Main"], "train.txt"), train)
    _write_lines(os.path.join(dirs["ImageSets/Main"], "val.txt"), val)
    names_file = os.path.join(out, "synth.names")
    _write_lines(names_file, names)
    return dict(devkit=os.path.join(out, "VOCdevkit"), names_file=names_file, names=names,
                train=train, val=val)
