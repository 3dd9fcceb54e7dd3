"""Class names: reading .names files and .data files, and the PASCAL VOC default."""
import os
from .errors import DarknetIOError

VOC_NAMES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
             "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
             "sheep", "sofa", "train", "tvmonitor"]

# Darknet's data/coco.names order
COCO_NAMES = ["person", "bicycle", "car", "motorbike", "aeroplane", "bus", "train", "truck",
              "boat", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench",
              "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
              "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis",
              "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
              "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork", "knife",
              "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
              "hot dog", "pizza", "donut", "cake", "chair", "sofa", "pottedplant", "bed",
              "diningtable", "toilet", "tvmonitor", "laptop", "mouse", "remote", "keyboard",
              "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
              "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"]


def read_names(path):
    """One class name per line; blank lines are ignored."""
    if not os.path.exists(path):
        raise DarknetIOError(f"{path}: names file not found")
    with open(path) as f:
        return [l.strip() for l in f if l.strip()]


def default_names(classes):
    """VOC's names for 20 classes, COCO's for 80, else class_0 ... class_{n-1}."""
    for names in (VOC_NAMES, COCO_NAMES):
        if classes == len(names):
            return list(names)
    return [f"class_{i}" for i in range(classes)]


def data_options(data):
    """key = value options of a .data file ({} for None)."""
    opts = {}
    if data is not None:
        with open(os.fspath(data)) as f:
            for line in f:
                key, sep, value = line.partition("=")
                if sep and not key.lstrip().startswith("#"):
                    opts[key.strip()] = value.strip()
    return opts


def data_names(data, classes):
    """Class names of a .data file (its names = file), else the defaults
    (VOC's for 20 classes); padded to `classes` entries."""
    path = data_options(data).get("names")
    names = read_names(path) if path else []
    return names + default_names(classes)[len(names):]


def resolve_names(names, classes):
    """names as given to Network/detect: None (the defaults), a list, a
    .names file or a .data file (its names = file); padded to `classes`."""
    if names is None:
        return default_names(classes)
    if isinstance(names, (str, os.PathLike)):
        path = os.fspath(names)
        if path.endswith(".data"):
            if not os.path.isfile(path):
                raise DarknetIOError(f"{path}: .data file not found")
            return data_names(path, classes)
        names = read_names(path)
    names = [str(n) for n in names]
    return names + default_names(classes)[len(names):]
