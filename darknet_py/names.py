"""Class names: reading .names files and the PASCAL VOC default."""
import os

VOC_NAMES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
             "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
             "sheep", "sofa", "train", "tvmonitor"]


def read_names(path):
    """One class name per line; blank lines are ignored."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: names file not found")
    with open(path) as f:
        return [l.strip() for l in f if l.strip()]


def default_names(classes):
    """VOC names for 20 classes, else class_0 ... class_{n-1}."""
    if classes == len(VOC_NAMES):
        return list(VOC_NAMES)
    return [f"class_{i}" for i in range(classes)]
