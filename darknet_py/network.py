"""Network: a Darknet network built from a .cfg, optionally with .weights,
running on the C core. Images go in as paths or H x W x 3 uint8 arrays."""
import os

import numpy as np

from . import _core
from .detections import DetectResult, Detection
from .errors import DarknetIOError, DarknetValueError
from .names import resolve_names


def parse_device(device):
    """None/'cpu' -> -1; 'cuda' -> 0; 'cuda:N' or N -> N."""
    if device is None or device == "cpu":
        return -1
    if isinstance(device, int) and not isinstance(device, bool) and device >= 0:
        return device
    if isinstance(device, str) and (device == "cuda" or device.startswith("cuda:")):
        n = device[5:] or "0"
        if n.isdigit():
            return int(n)
    raise DarknetValueError(f"device={device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def cuda_available():
    """True when this build has CUDA and a device is visible."""
    return _core.cuda_compiled() and _core.cuda_device_count() > 0


def _check_file(path, what):
    if not os.path.isfile(path):
        raise DarknetIOError(f"{path}: {what} not found")


class Network:
    """A Darknet network.

    >>> net = Network("cfg/yolov2-tiny-voc.cfg", "yolov2-tiny-voc.weights")
    >>> net.detect("dog.jpg")

    weights may be a Darknet .weights file or a packed ternary file
    (darknet_py.ternary.pack). ternary_kernel picks how ternary=1 conv layers
    run at inference: 'off' (float path with the TWN weights), 'float' (exact
    add/subtract) or 'int8' (int8 activations, integer accumulation).
    names: a list, a .names file or a .data file (default: VOC's names for
    20 classes, else class_0, class_1, ...).
    device='cuda:0' runs it on a CUDA device (DarknetError in a CPU build or
    without that device); 'cpu' (default) on the host.
    """

    def __init__(self, cfg, weights=None, *, batch=1, seed=0, names=None, threads=None,
                 ternary_kernel="off", device="cpu", letterbox=None):
        cfg = os.fspath(cfg)
        _check_file(cfg, "cfg file")
        self.cfg = cfg
        self._net = _core.Network(cfg, batch, seed)
        if weights is not None:
            self.load_weights(weights)
        if threads:
            self._net.set_threads(int(threads))
        self.ternary_kernel = ternary_kernel
        self.letterbox = letterbox
        self.to(device)
        self.names = resolve_names(names, self._classes())

    def _classes(self):
        for l in reversed(self.layers):
            if l["type"] in ("region", "yolo", "detection"):
                return l.get("classes", 0)
        return 0

    @property
    def letterbox(self):
        """How detect() places an image on the input: True letterbox (pjreddie's
        Darknet), False stretch (AlexeyAB's, unless his cfg says letter_box=1).
        From the cfg: [net] letter_box when present, else stretch for a cfg in
        AlexeyAB's dialect (Network.alexeyab) and letterbox otherwise. Set True
        or False to override, None to go back to the cfg's."""
        return self._net.letterbox

    @letterbox.setter
    def letterbox(self, value):
        self._net.letterbox = None if value is None else bool(value)

    @property
    def alexeyab(self):
        """True when the cfg uses options only AlexeyAB's fork has ([yolo]
        scale_x_y, iou_loss, nms_kind, ...; [net] mosaic, letter_box, ...)."""
        return self._net.alexeyab

    # --- device ---
    def to(self, device):
        """Move the network to device ('cpu', 'cuda', 'cuda:N'); returns self."""
        self._net.set_device(parse_device(device))
        return self

    @property
    def device(self):
        """'cpu' or 'cuda:N'."""
        d = self._net.device
        return "cpu" if d < 0 else f"cuda:{d}"

    @property
    def cudnn(self):
        """True when the conv layers run on cuDNN (on a device, in a CUDNN=1 build,
        unless the setting cudnn was 0 when the device was chosen)."""
        return self._net.cudnn

    # --- weights ---
    def load_weights(self, path, upto=-1):
        """Read a Darknet .weights file or a packed ternary file (told apart
        by its magic); upto=N: only the first N layers."""
        self._net.load_weights(os.fspath(path), upto)

    def save_weights(self, path, upto=-1):
        """Write a Darknet .weights file atomically (upto=N: first N layers)."""
        self._net.save_weights(os.fspath(path), upto)

    def export_onnx(self, path, opset=13, decode=False, nms=None, thresh=0.25, max_per_class=100):
        """Write the network as loaded (weights, batch, input size) as an ONNX
        model at path, atomically; its outputs equal layer_output of each
        detector layer; decode=True adds boxes, objectness and scores, nms=IoU
        the NMS-selected detections too (darknet_py.export). Returns path."""
        if isinstance(opset, bool) or not isinstance(opset, int):
            raise DarknetValueError(f"opset must be an int, got {opset!r}")
        _core.export_onnx(self._net, os.fspath(path), opset, bool(decode) or nms is not None,
                          float(nms or 0), float(thresh), int(max_per_class))
        return os.fspath(path)

    @property
    def ternary_kernel(self):
        """Inference kernel of the ternary conv layers: 'off' (the float path
        with the TWN weights), 'float' (exact: add/subtract, zeros skipped)
        or 'int8' (activations quantised per image, int32 accumulation)."""
        return _core.ternary_kernel(self._net)

    @ternary_kernel.setter
    def ternary_kernel(self, value):
        _core.set_ternary_kernel(self._net, str(value))

    # --- shapes and layers ---
    @property
    def layers(self):
        """One dict per layer: type, input_shape, output_shape, bflops, ...,
        forward_ms (the layer's wall time in the last forward on the CPU),
        cudnn (a conv layer on cuDNN: the names of its forward, backward_filter
        and backward_data algorithms and the workspace bytes they need; None
        elsewhere)."""
        return self._net.layers

    @property
    def input_shape(self):
        """(batch, channels, height, width)"""
        return tuple(self._net.input_shape)

    @property
    def seen(self):
        """Images trained on (saved in the .weights header)."""
        return self._net.seen

    @seen.setter
    def seen(self, value):
        self._net.seen = int(value)

    @property
    def learning_rate(self):
        """Learning rate of the cfg's schedule at the current batch (seen / batch)."""
        return self._net.learning_rate

    @property
    def bflops(self):
        return sum(l["bflops"] for l in self.layers)

    def summary(self):
        """Darknet-style layer table as a string."""
        rows = []
        for l in self.layers:
            c, h, w = l["input_shape"]
            oc, oh, ow = l["output_shape"]
            extra = ""
            if l["type"] == "convolutional":
                extra = f'{l["filters"]:5d} {l["size"]}x{l["size"]}/{l["stride"]}' + (" T" if l["ternary"] else "")
            rows.append(f'{l["index"]:4d} {l["type"]:<14s}{extra:<16s}{w:4d} x{h:4d} x{c:5d} -> '
                        f'{ow:4d} x{oh:4d} x{oc:5d} {l["bflops"]:7.3f} BF')
        rows.append(f"Total BFLOPS {self.bflops:.3f}")
        return "\n".join(rows)

    def __repr__(self):
        b, c, h, w = self.input_shape
        return f"Network({self.cfg!r}, layers={len(self.layers)}, input={w}x{h}x{c}, batch={b})"

    # --- compute ---
    def forward(self, x):
        """x: float32 array N x C x H x W. Returns the last layer's output."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        return self._net.forward(np.ascontiguousarray(x))

    def layer_output(self, i):
        """Output of layer i from the last forward, N x C x H x W."""
        return self._net.layer_output(int(i))

    def params(self, i):
        """Saved tensors of layer i, in .weights order, as writable views:
        {'biases': ..., 'scales': ..., 'rolling_mean': ..., 'rolling_variance': ..., 'weights': ...}"""
        return self._net.params(int(i))

    def set_teacher(self, teacher, weight=1.0):
        """Distil from teacher (a Network, or None to stop): each training
        forward runs it on the same input and each detector layer adds weight
        times its loss towards the teacher's matching detector outputs
        (dn_network_set_teacher). The teacher is kept alive by this network."""
        self._net.set_teacher(None if teacher is None else teacher._net, float(weight))
        self._teacher = teacher

    def resize(self, width, height, batch=None):
        b = self.input_shape[0] if batch is None else batch
        self._net.resize(b, width, height)

    def detect(self, image, thresh=0.25, nms=0.45):
        """Detect objects in an image (path or H x W x 3 uint8 RGB array).
        Returns a DetectResult: the list of Detection, by confidence, which
        also draws (plot, save) and exports (to_dict, label_lines) itself."""
        path = None
        if isinstance(image, (str, os.PathLike)):
            path = os.fspath(image)
            image = _core.load_image(path)
        image = np.ascontiguousarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise DarknetValueError(f"detect: expected an H x W x 3 uint8 image, got {image.dtype} {image.shape}")
        _, _, h, w = self.input_shape
        letterbox = self.letterbox
        x = _core.letterbox(image, w, h, letterbox)
        self.forward(x)
        boxes, _, probs = self._net.detections(0, image.shape[1], image.shape[0], thresh, letterbox, False, nms)
        out = []
        for i in range(len(boxes)):
            for k in np.nonzero(probs[i] > thresh)[0]:
                bx, by, bw, bh = (float(v) for v in boxes[i])
                box = (max(bx - bw / 2, 0.0), max(by - bh / 2, 0.0),
                       min(bx + bw / 2, image.shape[1] - 1.0), min(by + bh / 2, image.shape[0] - 1.0))
                if box[2] <= box[0] or box[3] <= box[1]:
                    continue  # entirely in the letterbox padding
                name = self.names[k] if k < len(self.names) else str(k)
                out.append(Detection(name, int(k), float(probs[i, k]), box))
        out.sort(key=lambda d: -d.confidence)
        return DetectResult(out, path=path, width=image.shape[1], height=image.shape[0],
                            names=self.names, image=image)
