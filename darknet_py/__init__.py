"""darknet_py: a ternary-weight Darknet (YOLO) with a C core.

    import darknet_py as dn
    net = dn.Network("cfg/yolov2-tiny-voc.cfg", "yolov2-tiny-voc.weights")
    for d in net.detect("dog.jpg"):
        print(d.label, d.confidence, d.box)
    results = dn.detect("cfg/yolov2-tiny-voc.cfg", "yolov2-tiny-voc.weights", "images/",
                        save_dir="out")           # one DetectResult per image
    dn.export_onnx("cfg/yolov2-tiny-voc.cfg", "yolov2-tiny-voc.weights", "model.onnx")

The compiled core is imported on first use, so the pure-Python tools
(darknet_py.voc, darknet_py.synth, darknet_py.cfgfile) work without it.
"""
import importlib

from .errors import (CfgParseError, DarknetError, DarknetIOError, DarknetValueError,
                     FormatError)

_LAZY = {"Network": "network", "Detection": "detections", "DetectResult": "detections",
         "detect": "detections", "train": "training",
         "TrainResult": "training", "validate": "evaluation", "evaluate": "evaluation",
         "staged_train": "staged", "calc_anchors": "anchors", "export_onnx": "export",
         "set_option": "settings", "get_option": "settings", "option_context": "settings",
         "describe_options": "settings"}
_SUBMODULES = {"stages", "staged", "voc", "synth", "cfgfile", "names", "ternary", "export", "settings"}

__all__ = ["Network", "Detection", "DetectResult", "detect", "train", "TrainResult", "validate",
           "evaluate", "staged_train", "calc_anchors", "export_onnx", "set_option", "get_option",
           "option_context", "describe_options", "stages", "DarknetError", "DarknetIOError", "CfgParseError", "FormatError",
           "DarknetValueError"]
__version__ = "0.1.0"


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'darknet_py' has no attribute {name!r}")
