"""PASCAL VOC -> Darknet labels, as Darknet's scripts/voc_label.py does it.

Conventions this module relies on:
- VOC boxes are (xmin, ymin, xmax, ymax) in 1-based, inclusive pixel coordinates.
- A Darknet label line is `class cx cy w h`, all normalised to [0, 1] by the image
  size, computed exactly as voc_label.py does (the `- 1` turns 1-based centres
  into 0-based ones): cx = ((xmin + xmax) / 2 - 1) / width, w = (xmax - xmin) / width,
  likewise for y and h.
- The label file of an image is found by path rewriting (label_path): the first
  '/images/' and the first '/JPEGImages/' become '/labels/', the image extension
  becomes '.txt'.

Layout written by convert(vocdevkit, out):
    out/VOC<year>/JPEGImages/<id>.jpg        symlink to the original image (copy if links fail)
    out/VOC<year>/labels/<id>.txt            non-difficult objects (what training reads)
    out/VOC<year>/labels/<id>.difficult.txt  difficult objects, same format, for evaluation;
                                             written only when the image has some
    out/<year>_<set>.txt                     absolute image paths, one per line
    out/train.txt                            every <year>_train and <year>_val list, joined,
                                             less the list used as valid (when there is no
                                             test set, valid is 2007_val and stays out of train)
    out/<name>.names, out/<name>.data, out/backup/

Pure Python (no darknet_py._core), so it runs without the compiled core.
"""
import os
import re
import shutil
import xml.etree.ElementTree as ET

from .names import VOC_NAMES
from .errors import DarknetIOError, DarknetValueError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".gif",
                    ".webp")
DEFAULT_SETS = ("train", "val", "test")
PROGRESS_MIN_IMAGES = 200  # below this many images convert() shows no progress bar


# ---------------------------------------------------------------------------- parsing

def _text(elem, tag, path, what):
    """Stripped text of elem/tag; ValueError naming the file when missing or empty."""
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DarknetValueError(f"{path}: {what}: missing <{tag}>")
    return child.text.strip()


def _number(elem, tag, path, what):
    s = _text(elem, tag, path, what)
    try:
        v = float(s)
    except ValueError:
        raise DarknetValueError(f"{path}: {what}: <{tag}> is not a number: {s!r}") from None
    return int(v) if v.is_integer() else v


def _flag(elem, tag, path, what):
    """0/1 flags such as <difficult>; absent means 0."""
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return False
    s = child.text.strip()
    try:
        return bool(int(float(s)))
    except ValueError:
        raise DarknetValueError(f"{path}: {what}: <{tag}> is not 0 or 1: {s!r}") from None


def parse_annotation(xml_path, classes=None):
    """Read one VOC annotation file.

    Returns dict(filename, width, height, objects=[dict(name, bbox, difficult, truncated)])
    with bbox = (xmin, ymin, xmax, ymax) in VOC's 1-based pixel coordinates, clipped to
    [1, width] x [1, height]. Objects whose clipped box has no area (entirely outside the
    image) are dropped. When `classes` is given, a name not in it is an error.
    Raises ValueError naming the file for malformed XML, a missing or non-positive size,
    a missing name or coordinate, xmax < xmin or ymax < ymin, or an unknown class.
    """
    path = os.fspath(xml_path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise DarknetValueError(f"{path}: malformed XML: {e}") from None
    if root.tag != "annotation":
        raise DarknetValueError(f"{path}: root element is <{root.tag}>, expected <annotation>")
    size = root.find("size")
    if size is None:
        raise DarknetValueError(f"{path}: missing <size>")
    width = _number(size, "width", path, "<size>")
    height = _number(size, "height", path, "<size>")
    if width <= 0 or height <= 0:
        raise DarknetValueError(f"{path}: <size> must be positive, got {width} x {height}")
    fn = root.find("filename")
    filename = fn.text.strip() if fn is not None and fn.text else ""

    known = None if classes is None else set(classes)
    objects = []
    for k, obj in enumerate(root.findall("object")):
        what = f"object {k}"
        name = _text(obj, "name", path, what)
        if known is not None and name not in known:
            raise DarknetValueError(f"{path}: {what}: unknown class name {name!r}")
        box = obj.find("bndbox")
        if box is None:
            raise DarknetValueError(f"{path}: {what} ({name}): missing <bndbox>")
        x0, y0, x1, y1 = (_number(box, t, path, f"{what} ({name})")
                          for t in ("xmin", "ymin", "xmax", "ymax"))
        if x1 < x0 or y1 < y0:
            raise DarknetValueError(f"{path}: {what} ({name}): box ({x0}, {y0}, {x1}, {y1}) has "
                             "xmax < xmin or ymax < ymin")
        x0, x1 = (min(max(v, 1), width) for v in (x0, x1))
        y0, y1 = (min(max(v, 1), height) for v in (y0, y1))
        if x1 <= x0 or y1 <= y0:
            continue
        objects.append(dict(name=name, bbox=(x0, y0, x1, y1),
                            difficult=_flag(obj, "difficult", path, what),
                            truncated=_flag(obj, "truncated", path, what)))
    return dict(filename=filename, width=width, height=height, objects=objects)


# ---------------------------------------------------------------------------- labels

def box_to_darknet(width, height, bbox):
    """(xmin, ymin, xmax, ymax) in 1-based pixels -> (cx, cy, w, h) normalised, as voc_label."""
    x0, y0, x1, y1 = bbox
    dw, dh = 1.0 / width, 1.0 / height
    x = (x0 + x1) / 2.0 - 1
    y = (y0 + y1) / 2.0 - 1
    return (x * dw, y * dh, (x1 - x0) * dw, (y1 - y0) * dh)


def label_line(class_id, width, height, bbox):
    """One Darknet label line (no newline)."""
    cx, cy, w, h = box_to_darknet(width, height, bbox)
    return f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def label_lines(ann, classes=VOC_NAMES):
    """(normal, difficult): label lines of a parse_annotation() result, difficult objects
    apart (Darknet's training labels skip them)."""
    index = {n: i for i, n in enumerate(classes)}
    normal, difficult = [], []
    for o in ann["objects"]:
        if o["name"] not in index:
            raise DarknetValueError(f"{ann.get('filename') or '<annotation>'}: unknown class name "
                             f"{o['name']!r}")
        line = label_line(index[o["name"]], ann["width"], ann["height"], o["bbox"])
        (difficult if o["difficult"] else normal).append(line)
    return normal, difficult


def label_path(image_path):
    """Label file of an image, derived as Darknet's loader does: the first '/images/' and
    the first '/JPEGImages/' become '/labels/', then the image extension becomes '.txt'.
    Raises ValueError when the path has no image extension."""
    p = os.fspath(image_path)
    p = p.replace("/images/", "/labels/", 1)
    p = p.replace("/JPEGImages/", "/labels/", 1)
    stem, ext = os.path.splitext(p)
    if ext.lower() not in IMAGE_EXTENSIONS:
        raise DarknetValueError(f"{image_path}: not an image extension ({ext or 'none'}), "
                         "cannot derive the label path")
    return stem + ".txt"


def difficult_path(image_path):
    """File holding an image's difficult objects: label_path with '.difficult.txt'."""
    return label_path(image_path)[:-len(".txt")] + ".difficult.txt"


# ---------------------------------------------------------------------------- conversion

def find_years(vocdevkit):
    """Sorted years of the VOC<year> folders in a VOCdevkit."""
    years = []
    for name in os.listdir(vocdevkit):
        m = re.fullmatch(r"VOC(\d{4})", name)
        if m and os.path.isdir(os.path.join(vocdevkit, name)):
            years.append(m.group(1))
    return sorted(years)


def _find_image(year_dir, image_id):
    jpeg_dir = os.path.join(year_dir, "JPEGImages")
    for ext in (".jpg",) + tuple(e for e in IMAGE_EXTENSIONS if e != ".jpg"):
        for e in (ext, ext.upper()):
            p = os.path.join(jpeg_dir, image_id + e)
            if os.path.isfile(p):
                return p
    raise DarknetIOError(f"{os.path.join(jpeg_dir, image_id)}.jpg: image not found")


def _link_or_copy(src, dst):
    """Make dst a symlink to src (replacing an old dst); copy when links fail."""
    if os.path.lexists(dst):
        if os.path.realpath(dst) == os.path.realpath(src):
            return
        os.remove(dst)
    try:
        os.symlink(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write_lines(path, lines):
    with open(path, "w") as f:
        f.writelines(line + "\n" for line in lines)


def _read_ids(path):
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def _progress(iterable, total, enabled, desc):
    if not enabled or total < PROGRESS_MIN_IMAGES:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="img")


def convert(vocdevkit, out, years=None, sets=DEFAULT_SETS, classes=VOC_NAMES,
            data_name="voc.data", progress=True):
    """Convert a VOCdevkit into Darknet's layout under `out` (see the module docstring).

    years: VOC years to convert (None: every VOC<year> folder present); sets: image sets,
    used where ImageSets/Main/<set>.txt exists; classes: class names in label order;
    data_name: name of the .data file (its .names file takes the same stem).
    Returns {'<year>_<set>': list path, ..., 'train': path, 'data': path, 'names': path}.
    Raises ValueError / FileNotFoundError naming the offending file.
    """
    vocdevkit = os.path.abspath(os.fspath(vocdevkit))
    out = os.path.abspath(os.fspath(out))
    classes = list(classes)
    if not classes:
        raise DarknetValueError("convert: empty class list")
    if not os.path.isdir(vocdevkit):
        raise DarknetIOError(f"{vocdevkit}: VOCdevkit folder not found")
    years = find_years(vocdevkit) if years is None else [str(y) for y in years]
    if not years:
        raise DarknetValueError(f"{vocdevkit}: no VOC<year> folders found")

    jobs = []  # (year, set, ids)
    for year in years:
        year_dir = os.path.join(vocdevkit, f"VOC{year}")
        if not os.path.isdir(year_dir):
            raise DarknetIOError(f"{year_dir}: folder not found")
        for s in sets:
            list_file = os.path.join(year_dir, "ImageSets", "Main", f"{s}.txt")
            if os.path.isfile(list_file):
                jobs.append((year, s, _read_ids(list_file)))
    if not jobs:
        raise DarknetValueError(f"{vocdevkit}: no ImageSets/Main/<set>.txt for sets {list(sets)} "
                         f"in years {years}")

    os.makedirs(out, exist_ok=True)
    written = {}
    done = {}  # (year, id) -> absolute image path under out
    total = sum(len(ids) for _, _, ids in jobs)
    items = ((year, s, i) for year, s, ids in jobs for i in ids)
    lists = {}
    for year, s, image_id in _progress(items, total, progress, "voc labels"):
        key = (year, image_id)
        if key not in done:
            done[key] = _convert_one(vocdevkit, out, year, image_id, classes)
        lists.setdefault(f"{year}_{s}", []).append(done[key])

    for year, s, _ in jobs:
        name = f"{year}_{s}"
        path = os.path.join(out, name + ".txt")
        _write_lines(path, lists.get(name, []))
        written[name] = path

    # valid: 2007_test, else 2007_val, else any test, else any val list. train.txt joins
    # every train and val list except the one used for validation (no leak between them).
    valid_key = next((k for k in ("2007_test", "2007_val") if k in written), None)
    if valid_key is None:
        valid_key = next((f"{y}_{s}" for s in ("test", "val") for y in years
                          if f"{y}_{s}" in written), None)
    train = [p for year, s, _ in jobs if s in ("train", "val") and f"{year}_{s}" != valid_key
             for p in lists.get(f"{year}_{s}", [])]
    written["train"] = os.path.join(out, "train.txt")
    _write_lines(written["train"], train)
    valid = written[valid_key] if valid_key else written["train"]
    stem = os.path.splitext(data_name)[0]
    written["names"] = os.path.join(out, stem + ".names")
    _write_lines(written["names"], classes)
    backup = os.path.join(out, "backup") + os.sep
    os.makedirs(backup, exist_ok=True)
    written["data"] = os.path.join(out, data_name)
    _write_lines(written["data"], [f"classes={len(classes)}", f"train={written['train']}",
                                   f"valid={valid}", f"names={written['names']}",
                                   f"backup={backup}"])
    return written


def _convert_one(vocdevkit, out, year, image_id, classes):
    """Link one image and write its label files; returns the linked image's path."""
    year_dir = os.path.join(vocdevkit, f"VOC{year}")
    xml = os.path.join(year_dir, "Annotations", image_id + ".xml")
    if not os.path.isfile(xml):
        raise DarknetIOError(f"{xml}: annotation not found")
    ann = parse_annotation(xml, classes)
    src = _find_image(year_dir, image_id)
    img_dir = os.path.join(out, f"VOC{year}", "JPEGImages")
    os.makedirs(img_dir, exist_ok=True)
    dst = os.path.join(img_dir, os.path.basename(src))
    _link_or_copy(src, dst)
    # Labels go where the loader will look for them, even when `out` itself
    # contains an '/images/' component.
    os.makedirs(os.path.dirname(label_path(dst)), exist_ok=True)
    normal, difficult = label_lines(ann, classes)
    _write_lines(label_path(dst), normal)
    dpath = difficult_path(dst)
    if difficult:
        _write_lines(dpath, difficult)
    elif os.path.exists(dpath):
        os.remove(dpath)
    return dst
