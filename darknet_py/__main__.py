"""python -m darknet_py <command> ...

Commands live in the COMMANDS table: name -> (help, add_arguments(parser), run(args)).
To add one (train, valid, staged, ...) write the two functions and add a row; run()
returns an exit status and raises ValueError/OSError for bad input, which main() turns
into a one-line message and status 2. Only this module exits the process. Heavy
imports happen inside run() so that `--help` stays fast.
"""
import argparse
import sys
from .errors import DarknetValueError


# ---------------------------------------------------------------------------- synth-voc

def _synth_voc_args(p):
    p.add_argument("out", help="output folder (VOCdevkit/, Darknet lists, synth.data)")
    p.add_argument("--images", type=int, default=200, help="number of images (default 200)")
    p.add_argument("--classes", type=int, default=5, help="number of shape classes, 1-10 (default 5)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--val-split", type=float, default=0.2,
                   help="fraction of images in the val set (default 0.2)")
    p.add_argument("--min-objects", type=int, default=1, help="objects per image, at least (default 1)")
    p.add_argument("--max-objects", type=int, default=4, help="objects per image, at most (default 4)")
    p.add_argument("--random-colors", action="store_true",
                   help="colour each object at random (default: one colour per class)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _synth_voc(args):
    from . import synth, voc
    if not 0.0 <= args.val_split <= 1.0:
        raise DarknetValueError(f"--val-split must be in [0, 1], got {args.val_split}")
    info = synth.make_synthetic_voc(args.out, images=args.images, classes=args.classes,
                                    size=args.size, seed=args.seed, split=1.0 - args.val_split,
                                    min_objects=args.min_objects, max_objects=args.max_objects,
                                    easy_colors=not args.random_colors,
                                    progress=not args.no_progress)
    written = voc.convert(info["devkit"], args.out, classes=info["names"],
                          data_name="synth.data", progress=not args.no_progress)
    print(f"{len(info['train'])} train + {len(info['val'])} val images of "
          f"{len(info['names'])} classes; data file {written['data']}")
    return 0


# ---------------------------------------------------------------------------- voc-label

def _voc_label_args(p):
    p.add_argument("vocdevkit", help="VOCdevkit folder holding VOC<year>/ folders")
    p.add_argument("out", help="output folder (links, labels, lists, voc.data)")
    p.add_argument("--years", nargs="+", help="years to convert (default: every VOC<year> present)")
    p.add_argument("--sets", nargs="+", default=["train", "val", "test"],
                   help="image sets to convert where present (default: train val test)")
    p.add_argument("--names", help=".names file with the class list (default: the 20 VOC classes)")
    p.add_argument("--data-name", default="voc.data", help="name of the .data file (default voc.data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _voc_label(args):
    from . import voc
    from .names import VOC_NAMES, read_names
    classes = read_names(args.names) if args.names else VOC_NAMES
    written = voc.convert(args.vocdevkit, args.out, years=args.years, sets=args.sets,
                          classes=classes, data_name=args.data_name,
                          progress=not args.no_progress)
    for key in sorted(k for k in written if k[:1].isdigit()):
        with open(written[key]) as f:
            print(f"{key}: {sum(1 for _ in f)} images -> {written[key]}")
    print(f"data file {written['data']}")
    return 0


# ---------------------------------------------------------------------------- map / valid

def _eval_common_args(p):
    p.add_argument("data", help=".data file (classes, valid list, names)")
    p.add_argument("cfg", help="network .cfg")
    p.add_argument("weights", help="Darknet .weights file (\"\": random initialisation)")
    p.add_argument("--list", help="image list to use instead of the .data file's valid")
    p.add_argument("--threads", type=int, default=0, help="threads (default: the library's)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _letterbox_args(p)


def _letterbox_args(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--letter-box", dest="letterbox", action="store_true", default=None,
                   help="letterbox the images (default: as the cfg says)")
    g.add_argument("--no-letter-box", dest="letterbox", action="store_false",
                   help="stretch the images to the input (default: as the cfg says)")


def _map_args(p):
    _eval_common_args(p)
    p.add_argument("--thresh", type=float, default=0.25,
                   help="confidence threshold of precision/recall/F1/TP/FP/FN (default 0.25)")
    p.add_argument("--iou-thresh", type=float, default=0.5, help="IoU of a match (default 0.5)")
    p.add_argument("--points", type=int, default=0, choices=(0, 11, 101),
                   help="AP: 0 area under the curve (VOC2010+), 11 (VOC2007), 101 (default 0)")


def _map(args):
    from .evaluation import validate
    r = validate(args.data, args.cfg, args.weights or None, iou_thresh=args.iou_thresh, thresh=args.thresh,
                 points=args.points, progress=not args.no_progress, image_list=args.list,
                 threads=args.threads, device=args.device, letterbox=args.letterbox)
    print(r.table(), end="")
    return 0


def _valid_args(p):
    _eval_common_args(p)
    p.add_argument("--out-dir", help="folder of the result files (default: the .data file's "
                   "results, else results/)")
    p.add_argument("--prefix", default="comp4_det_test_",
                   help="file name prefix (default comp4_det_test_)")


def _valid(args):
    from .evaluation import write_results
    write_results(args.data, args.cfg, args.weights or None, out_dir=args.out_dir, prefix=args.prefix,
                  image_list=args.list, threads=args.threads, device=args.device, progress=not args.no_progress,
                  letterbox=args.letterbox)
    return 0


# ---------------------------------------------------------------------------- detect

def _detect_args(p):
    p.add_argument("cfg", help="network .cfg")
    p.add_argument("weights", help=".weights or packed ternary file (\"\": random initialisation)")
    p.add_argument("source", nargs="+", help="images, folders, list files (.txt) or glob patterns")
    p.add_argument("--names", help="class names: a .names or .data file (default: VOC's for 20 classes)")
    p.add_argument("--thresh", type=float, default=0.25, help="confidence threshold (default 0.25)")
    p.add_argument("--nms", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    _letterbox_args(p)
    p.add_argument("--save-dir", help="write each image with its boxes drawn as <dir>/<name>.png")
    p.add_argument("--save-labels", action="store_true",
                   help="write Darknet label files where training reads them (images/ -> labels/)")
    p.add_argument("--json", help="write the detections as AlexeyAB's result.json")
    p.add_argument("--ternary-kernel", default="off", choices=("off", "float", "int8"),
                   help="kernel of the ternary layers (default off)")
    p.add_argument("--threads", type=int, default=0, help="threads (default: the library's)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _detect(args):
    import json
    import os
    from .detections import detect
    results = detect(args.cfg, args.weights or None, args.source, thresh=args.thresh, nms=args.nms,
                     names=args.names, device=args.device, ternary_kernel=args.ternary_kernel,
                     threads=args.threads, save_dir=args.save_dir, save_labels=args.save_labels,
                     progress=not args.no_progress, letterbox=args.letterbox)
    for i, r in enumerate(results):
        print(f"{r.path if r.path is not None else i}: {len(r)} objects")
        for d in r:
            l, t, w, h = d.box[0], d.box[1], d.xywh[2], d.xywh[3]
            print(f"{d.label}: {d.confidence * 100:.0f}%\t(left_x: {l:4.0f}   top_y: {t:4.0f}   "
                  f"width: {w:4.0f}   height: {h:4.0f})")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump([r.to_dict(i + 1) for i, r in enumerate(results)], f, indent=1)
        os.replace(tmp, args.json)
    return 0


# ---------------------------------------------------------------------------- calc-anchors

def _anchors_args(p):
    p.add_argument("data", help=".data file (its train list and classes)")
    p.add_argument("--num", type=int, default=9, help="number of anchors (default 9)")
    p.add_argument("--width", type=int, default=416, help="network input width (default 416)")
    p.add_argument("--height", type=int, default=416, help="network input height (default 416)")
    p.add_argument("--list", help="image list to use instead of the .data file's train")


def _anchors(args):
    from .anchors import calc_anchors
    r = calc_anchors(args.data, args.num, args.width, args.height, image_list=args.list)
    print(f"{r.boxes} boxes, {args.num} anchors at {r.width} x {r.height}, avg IoU = {100 * r.avg_iou:.2f}%")
    print(f"[yolo] anchors = {r.cfg()}")
    print(f"[region] anchors = {r.cfg(stride=32)}")
    return 0


# ---------------------------------------------------------------------------- train

def _train_args(p):
    p.add_argument("data", help=".data file (train list, classes, backup)")
    p.add_argument("cfg", help="network cfg")
    p.add_argument("weights", nargs="?", help="initial weights (a .conv.N prefix file is fine)")
    p.add_argument("--max-batches", type=int, help="stop after this many batches (default: the cfg's)")
    p.add_argument("--backup", help="checkpoint folder (default: the .data file's backup)")
    p.add_argument("--clear", action="store_true", help="reset the images-seen counter")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, help="CPU threads")
    p.add_argument("--gpus", help="CUDA devices, e.g. 0 or 0,1 (default: the CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _letterbox_args(p)
    p.add_argument("--bn-recalibrate", type=int, choices=(0, 1),
                   help="re-estimate the batch-norm statistics at the end (default: only from scratch)")


def _train(args):
    from .training import train
    r = train(args.data, args.cfg, args.weights, max_batches=args.max_batches, backup=args.backup,
              clear=args.clear, seed=args.seed, threads=args.threads, progress=not args.no_progress,
              gpus=args.gpus, letterbox=args.letterbox,
              bn_recalibrate=None if args.bn_recalibrate is None else bool(args.bn_recalibrate))
    print(f"{'stopped' if r.interrupted else 'done'} after {r.iterations} batches; "
          f"final: {r.final if not r.interrupted else r.backup}; min-loss ({r.min_loss:.4f}): {r.minloss}")
    return 0


# ---------------------------------------------------------------------------- staged

def _staged_args(p):
    p.add_argument("data", help=".data file")
    p.add_argument("cfg", help="full-precision network cfg (ternary flags are set per stage)")
    p.add_argument("weights", nargs="?", help="full-precision weights (default: train them first)")
    p.add_argument("--plan", default="auto",
                   help="auto | generic | sensitivity (measured per layer on training images) | yolov2-voc | "
                        "yolov3-voc | yolov3-tiny-voc")
    p.add_argument("--iterations", type=int, default=1000, help="batches per stage (default 1000)")
    p.add_argument("--fp-iterations", type=int, help="batches of full-precision training when no weights are given")
    p.add_argument("--learning-rate", type=float,
                   help="learning rate of every run after the float one (default: a tenth of the cfg's "
                        "when weights are given, else the cfg's)")
    p.add_argument("--out", default="runs/staged", help="output folder (default runs/staged)")
    p.add_argument("--no-baseline", action="store_true", help="skip the direct full-ternary baseline")
    p.add_argument("--fp-reference", action="store_true",
                   help="also fine-tune the float model as long as all the stages (row 'FP fine-tuned')")
    p.add_argument("--ternary-scale", choices=("layer", "filter"), help="alpha per layer (default) or per filter")
    p.add_argument("--keep-float", nargs="+", default=(), choices=("first", "detector", "depthwise", "pointwise", "3x3+"),
                   help="conv kinds kept float: a mixed-precision variant (rows 'M<k> mixed')")
    p.add_argument("--bn-recalibrate", type=int, choices=(0, 1),
                   help="re-estimate the batch-norm statistics after each run (default: when it moved the weights or ran more than 25 batches)")
    p.add_argument("--average-last", type=int,
                   help="final weights of each ternary run: the average over its last N iterations "
                        "(default: a quarter of the run when weights are given, else 0: off)")
    p.add_argument("--distill", type=float, default=0.0,
                   help="weight of knowledge distillation from the float model in every ternary run (default 0: off)")
    p.add_argument("--batch", type=int, help="[net] batch of every run (default: the cfg's)")
    p.add_argument("--subdivisions", type=int, help="[net] subdivisions of every run (default: the cfg's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads")
    p.add_argument("--gpus", help="CUDA devices to train on, e.g. 0 or 0,1 (default: the CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _staged(args):
    from .staged import staged_train, table
    rows = staged_train(args.data, args.cfg, args.weights, plan=args.plan,
                        iterations_per_stage=args.iterations, fp_iterations=args.fp_iterations,
                        learning_rate=args.learning_rate, baseline=not args.no_baseline,
                        out_dir=args.out, seed=args.seed, threads=args.threads, gpus=args.gpus,
                        progress=not args.no_progress, fp_reference=args.fp_reference, batch=args.batch,
                        subdivisions=args.subdivisions, ternary_scale=args.ternary_scale,
                        keep_float=tuple(args.keep_float), average_last=args.average_last, distill=args.distill,
                        bn_recalibrate=None if args.bn_recalibrate is None else bool(args.bn_recalibrate))
    print(table(rows))
    print(f"written: {args.out}/results.md, results.json, darknet.sh")
    return 0


# ---------------------------------------------------------------------------- export

def _export_args(p):
    p.add_argument("cfg", help="network .cfg")
    p.add_argument("weights", help=".weights or packed ternary file (\"\": random initialisation)")
    p.add_argument("out", help="ONNX file to write (atomically)")
    p.add_argument("--opset", type=int, default=13, help="ONNX opset, 11 to 21 (default 13)")
    p.add_argument("--batch", type=int, default=1, help="batch size of the model's input (default 1)")
    p.add_argument("--decode", action="store_true",
                   help="add the outputs boxes, objectness and scores of every detector layer")
    p.add_argument("--nms", type=float, default=None,
                   help="add the output detections after NonMaxSuppression at this IoU (implies --decode)")
    p.add_argument("--thresh", type=float, default=0.25, help="score threshold of --nms (default 0.25)")
    p.add_argument("--max", type=int, default=100, help="at most this many boxes per class and image (--nms)")


def _export(args):
    from .export import export_onnx
    export_onnx(args.cfg, args.weights or None, args.out, opset=args.opset, batch=args.batch,
                decode=args.decode, nms=args.nms, thresh=args.thresh, max_per_class=args.max)
    print(f"exported {args.cfg} ({args.weights or 'random weights'}) to {args.out} "
          f"(ONNX opset {args.opset}, batch {args.batch})")
    return 0


COMMANDS = {
    "detect": ("detect objects in images, folders or lists, as `darknet detector test`",
               _detect_args, _detect),
    "train": ("train a detector, as `darknet detector train`", _train_args, _train),
    "staged": ("the staged ternary training method M0..M3 with its results table", _staged_args, _staged),
    "synth-voc": ("generate a synthetic shapes data set in VOC format and convert it for "
                  "Darknet", _synth_voc_args, _synth_voc),
    "calc-anchors": ("anchor boxes for a data set (k-means, 1 - IoU), as `darknet detector calc_anchors`",
                     _anchors_args, _anchors),
    "voc-label": ("convert a PASCAL VOCdevkit into Darknet labels, lists and voc.data",
                  _voc_label_args, _voc_label),
    "map": ("mean average precision of a detector over the valid list, as "
            "`darknet detector map`", _map_args, _map),
    "valid": ("write per-class VOC result files (comp4_det_test_<class>.txt), as "
              "`darknet detector valid`", _valid_args, _valid),
    "export": ("write a network as an ONNX model (its detector layers' outputs), as "
               "`darknet export onnx`", _export_args, _export),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m darknet_py",
                                     description="darknet_py command line")
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv=None):
    """Run one command; returns the exit status (2 for bad input or usage)."""
    from .errors import DarknetError
    args = build_parser().parse_args(argv)  # argparse itself exits 2 on bad usage
    try:
        return COMMANDS[args.command][2](args)
    except (ValueError, OSError, DarknetError) as e:
        print(f"darknet_py {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
