"""Run-time settings of the C core (kernel paths and switches), as pandas'
options: set_option / get_option / option_context / describe_options.

    dn.set_option("ternary_algo", "packed")
    with dn.option_context(conv_algo="ref", simd=0):
        ...                                    # restored on exit

Each setting's first value comes from its environment variable (read once,
at first use: DN_CONV_ALGO, DN_TERNARY_ALGO, DN_SIMD, DARKNET_CUDNN);
the CLI takes `-option name=value` on any command. Values are strings (ints
and bools are converted: simd=0, cudnn=False).
"""
import contextlib

from . import _core


def _text(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    return None if value is None else str(value)


def set_option(name, value):
    """Set a run-time setting; value None restores its default. A bad name
    or value raises DarknetValueError naming the valid ones."""
    _core.set_option(name, _text(value))


def get_option(name):
    """The current value of a run-time setting, as a string."""
    opts = _core.options()
    if name not in opts:
        _core.set_option(name, None)  # raises with the list of names
    return opts[name][0]


def describe_options():
    """{name: (value, help)} for every run-time setting."""
    return dict(_core.options())


@contextlib.contextmanager
def option_context(**settings):
    """Set settings for a with-block and restore the old values after it."""
    old = {name: get_option(name) for name in settings}
    try:
        for name, value in settings.items():
            set_option(name, value)
        yield
    finally:
        for name, value in old.items():
            _core.set_option(name, value)
