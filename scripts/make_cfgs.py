"""Writes the project's own cfg files (cfg/*.cfg) from compact architecture
descriptions: the standard YOLO VOC models and small models for CPU demos.

    python scripts/make_cfgs.py [outdir]
"""
import os
import sys

VOC_ANCHORS_V2 = "1.3221,1.73145, 3.19275,4.00944, 5.05587,8.09892, 9.47112,4.84053, 11.2364,10.0071"
TINY_ANCHORS_V2 = "1.08,1.19, 3.42,4.41, 6.63,11.38, 9.42,5.11, 16.62,10.52"
ANCHORS_V3 = "10,13, 16,30, 33,23, 30,61, 62,45, 59,119, 116,90, 156,198, 373,326"
TINY_ANCHORS_V3 = "10,14, 23,27, 37,58, 81,82, 135,169, 344,319"


def net(size=416, batch=64, subdivisions=16, lr=0.001, max_batches=40200, steps=None,
        burn_in=1000, extra=""):
    steps = steps or [int(max_batches * .8), int(max_batches * .9)]
    return f"""[net]
# Testing: ./darknet sets batch=1 for detection
# Training
batch={batch}
subdivisions={subdivisions}
width={size}
height={size}
channels=3
momentum=0.9
decay=0.0005
angle=0
saturation=1.5
exposure=1.5
hue=.1

learning_rate={lr}
burn_in={burn_in}
max_batches={max_batches}
policy=steps
steps={','.join(map(str, steps))}
scales=.1,.1
{extra}"""


def conv(filters, size=3, stride=1, bn=True, act="leaky"):
    s = "\n[convolutional]\n"
    if bn:
        s += "batch_normalize=1\n"
    return s + f"filters={filters}\nsize={size}\nstride={stride}\npad=1\nactivation={act}\n"


def maxpool(size=2, stride=2):
    return f"\n[maxpool]\nsize={size}\nstride={stride}\n"


def route(*layers):
    return f"\n[route]\nlayers={','.join(map(str, layers))}\n"


def shortcut(frm=-3):
    return f"\n[shortcut]\nfrom={frm}\nactivation=linear\n"


def region(anchors, classes=20, num=5, jitter=.2):
    return f"""
[region]
anchors={anchors}
bias_match=1
classes={classes}
coords=4
num={num}
softmax=1
jitter={jitter}
rescore=1
object_scale=5
noobject_scale=1
class_scale=1
coord_scale=1
absolute=1
thresh=.6
random=1
"""


def yolo(mask, anchors, num, classes=20):
    return f"""
[yolo]
mask={','.join(map(str, mask))}
anchors={anchors}
classes={classes}
num={num}
jitter=.3
ignore_thresh=.7
truth_thresh=1
random=1
"""


def yolov2_tiny(classes=20, size=416, widths=(16, 32, 64, 128, 256, 512, 1024), jitter=.2, **kw):
    s = net(size=size, **kw)
    for i, f in enumerate(widths[:6]):
        s += conv(f) + maxpool(2, 2 if i < 5 else 1)
    s += conv(widths[6]) + conv(widths[6]) + conv(5 * (classes + 5), 1, bn=False, act="linear")
    return s + region(TINY_ANCHORS_V2, classes, jitter=jitter)


def yolov2(classes=20):
    s = net(max_batches=80200, steps=[40000, 60000])
    s += conv(32) + maxpool() + conv(64) + maxpool()
    s += conv(128) + conv(64, 1) + conv(128) + maxpool()
    s += conv(256) + conv(128, 1) + conv(256) + maxpool()
    s += conv(512) + conv(256, 1) + conv(512) + conv(256, 1) + conv(512) + maxpool()
    s += conv(1024) + conv(512, 1) + conv(1024) + conv(512, 1) + conv(1024)
    s += conv(1024) + conv(1024) + route(-9) + conv(64, 1) + "\n[reorg]\nstride=2\n"
    s += route(-1, -4) + conv(1024) + conv(5 * (classes + 5), 1, bn=False, act="linear")
    return s + region(VOC_ANCHORS_V2, classes, jitter=.3)


def yolov3_tiny(classes=20):
    s = net(max_batches=40200)
    for i, f in enumerate((16, 32, 64, 128, 256, 512)):
        s += conv(f) + maxpool(2, 2 if i < 5 else 1)
    out = 3 * (classes + 5)
    s += conv(1024) + conv(256, 1) + conv(512) + conv(out, 1, bn=False, act="linear")
    s += yolo([3, 4, 5], TINY_ANCHORS_V3, 6, classes)
    s += route(-4) + conv(128, 1) + "\n[upsample]\nstride=2\n" + route(-1, 8)
    s += conv(256) + conv(out, 1, bn=False, act="linear")
    return s + yolo([0, 1, 2], TINY_ANCHORS_V3, 6, classes)


def yolov3(classes=20):
    s = net(max_batches=50200, steps=[40000, 45000])
    s += conv(32)
    for f, blocks in ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4)):
        s += conv(f, 3, 2)
        for _ in range(blocks):
            s += conv(f // 2, 1) + conv(f) + shortcut(-3)
    out = 3 * (classes + 5)
    for k, (f, mask) in enumerate(((512, [6, 7, 8]), (256, [3, 4, 5]), (128, [0, 1, 2]))):
        if k:
            s += route(-4) + conv(f, 1) + "\n[upsample]\nstride=2\n" + route(-1, 61 if k == 1 else 36)
        s += (conv(f, 1) + conv(2 * f)) * 3 + conv(out, 1, bn=False, act="linear")
        s += yolo(mask, ANCHORS_V3, 9, classes)
    return s


CFGS = {
    "yolov2-voc.cfg": lambda: yolov2(),
    "yolov2-tiny-voc.cfg": lambda: yolov2_tiny(),
    "yolov3-voc.cfg": lambda: yolov3(),
    "yolov3-tiny-voc.cfg": lambda: yolov3_tiny(),
    # A quarter-width yolov2-tiny at 224 for CPU demos and tests (~0.1 BFLOPs).
    "yolov2-tiny-voc-small.cfg": lambda: yolov2_tiny(
        size=224, widths=(8, 16, 32, 64, 128, 128, 256), batch=16, subdivisions=1,
        max_batches=2000, burn_in=100),
    # The embedded default: 5 synthetic shape classes at 160x160 for the demo
    # and the staged run on two CPU cores.
    "yolov2-tiny-synth.cfg": lambda: yolov2_tiny(
        classes=5, size=160, widths=(8, 16, 32, 64, 64, 128, 128), batch=32, subdivisions=1,
        max_batches=600, burn_in=50, lr=0.002, jitter=.1),
}


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    for name, make in CFGS.items():
        with open(os.path.join(outdir, name), "w") as f:
            f.write(make())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "cfg"))
