"""Exceptions raised by darknet_py. The C core's status codes map onto these
classes in one place (csrc/python/module.cpp, raise_status)."""


class DarknetError(Exception):
    """Base class of every error raised by the C core."""


class DarknetIOError(DarknetError, FileNotFoundError):
    """A file is missing or cannot be read or written."""


class CfgParseError(DarknetError, ValueError):
    """A text input (cfg, .data, list or label file) is malformed."""


class FormatError(DarknetError, ValueError):
    """A binary input (weights, packed ternary file, image) is malformed."""


class DarknetValueError(DarknetError, ValueError):
    """An argument or option value is out of range."""


class DarknetMemoryError(DarknetError, MemoryError):
    """An allocation failed."""


class DarknetStateError(DarknetError, RuntimeError):
    """The call does not fit the object's state."""


class DarknetUnsupportedError(DarknetError, NotImplementedError):
    """The requested feature is not available in this build."""
