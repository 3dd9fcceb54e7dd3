"""ONNX export: a Darknet network (cfg + weights, .weights or packed ternary)
written as an ONNX model by the C core (csrc/export/onnx.c).

    import darknet_py as dn
    dn.export_onnx("cfg/yolov3-tiny-voc.cfg", "yolov3-tiny-voc.weights", "yolov3-tiny.onnx")

The model's input is "input", batch x 3 x height x width float32 (the cfg's
size; the same placement as the network: Network.letterbox, also in the
model's metadata); its outputs are the detector layers' outputs exactly as
Network.layer_output gives them after a forward (named <type>_<layer>, e.g.
yolo_16), so Darknet's box decoding applies to them unchanged; a network
without detector layers has one output "output", its last layer's.

decode=True adds three outputs, the boxes of every detector layer as
Network.detections decodes them, before thresholds, NMS and placement on the
image: "boxes" batch x rows x 4 (centre x, y, width, height relative to the
network input), "objectness" batch x rows and "scores" batch x rows x classes
(objectness times class probability); rows in Darknet's order (per layer:
yolo cell then anchor, region anchor then cell). Darknet keeps a row when its
objectness (and a class when its score) is above the threshold, then runs NMS
(e.g. cv2.dnn.NMSBoxes); the boxes are in the network input's frame, so a
letterboxed input needs Darknet's correction (Network.letterbox).

nms=IoU (implies decode) makes a ready-to-use model: one more output,
"detections" n x 7, each row (batch index, class, score, centre x, y, width,
height), ONNX's NonMaxSuppression per image and class (a box whose IoU with
a better one of its class is above nms is dropped) over the rows whose score
is above thresh, at most max_per_class per class and image. Darknet's own
NMS (Network.detect) is greedy per class too.

Ternary layers export their ternary values (alpha * {-1, 0, +1}) as float
weights. Errors are darknet_py.errors classes: DarknetUnsupportedError
naming the layer for what ONNX cannot express, DarknetIOError for an
unwritable path (the file at path is then left as it was)."""
from .errors import DarknetValueError
from .network import Network


def export_onnx(cfg, weights, path, opset=13, batch=1, decode=False, nms=None, thresh=0.25, max_per_class=100):
    """Load cfg with weights (a .weights or packed ternary file; None: the
    cfg's random initialisation) at the given batch size and write it as an
    ONNX model at path. decode=True adds the outputs boxes, objectness and
    scores (see the module's doc); nms=IoU (implies decode) also the output
    detections after ONNX's NonMaxSuppression (see the module's doc).
    Returns path."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise DarknetValueError(f"batch must be a positive int, got {batch!r}")
    net = Network(cfg, weights, batch=batch)
    return net.export_onnx(path, opset=opset, decode=decode, nms=nms, thresh=thresh, max_per_class=max_per_class)
