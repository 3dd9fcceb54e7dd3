"""The `darknet` command that pip installs: the command line of the ./darknet
binary (csrc/cli/main.c, Darknet's commands and options), run in this
process through darknet_py._core.cli_main. `darknet-py` is the Python
command line (darknet_py.__main__).

    darknet detector test cfg/voc.data cfg/yolov2-tiny-voc.cfg w.weights dog.jpg
"""
import os
import sys


def main(argv=None):
    """Run Darknet's command line on argv (default sys.argv[1:]); returns
    its exit status. The C code prints to file descriptors 1 and 2."""
    from . import _core
    if argv is None:
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "darknet"
        args = sys.argv[1:]
    else:
        prog, args = "darknet", list(argv)
    sys.stdout.flush()  # what Python printed first comes first
    sys.stderr.flush()
    return _core.cli_main([prog, *map(str, args)])


if __name__ == "__main__":
    sys.exit(main())
