"""darknet_py: a ternary-weight Darknet (YOLO) with a C core.

    import darknet_py as dn
    net = dn.Network("cfg/yolov2-tiny-voc.cfg", "yolov2-tiny-voc.weights")
    for d in net.detect("dog.jpg"):
        print(d.label, d.confidence, d.box)
"""
from .errors import (CfgParseError, DarknetError, DarknetIOError, DarknetValueError,
                     FormatError)
from .network import Detection, Network
from .train import TrainResult, train

__all__ = ["Network", "Detection", "train", "TrainResult", "DarknetError", "DarknetIOError", "CfgParseError",
           "FormatError", "DarknetValueError"]
__version__ = "0.1.0"
