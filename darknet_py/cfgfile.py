"""Reading and editing Darknet .cfg text from Python (for tools such as the
stage-cfg generator). The C core has its own parser; this one keeps the text's
comments and order so edited cfgs stay readable."""
import os
from .errors import DarknetIOError, DarknetValueError


class Section:
    """One [section]: name, its option lines in order, and the raw lines."""

    def __init__(self, name, line):
        self.name = name
        self.line = line
        self.options = []  # [key, value] pairs (first occurrence wins, as in the core)

    def get(self, key, default=None):
        for k, v in self.options:
            if k == key:
                return v
        return default

    def set(self, key, value):
        for kv in self.options:
            if kv[0] == key:
                kv[1] = str(value)
                return
        self.options.append([key, str(value)])

    def remove(self, key):
        self.options = [kv for kv in self.options if kv[0] != key]


def read_cfg(path):
    """Parse a cfg into a list of Section (comments are dropped)."""
    if not os.path.isfile(path):
        raise DarknetIOError(f"{path}: cfg file not found")
    sections = []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                if not line.endswith("]"):
                    raise DarknetValueError(f"{path}:{n}: malformed section header {line!r}")
                sections.append(Section(line[1:-1].strip(), n))
            elif "=" in line and sections:
                k, v = line.split("=", 1)
                sections[-1].options.append(["".join(k.split()), "".join(v.split())])
            else:
                raise DarknetValueError(f"{path}:{n}: expected key=value, got {line!r}")
    return sections


def write_cfg(sections, path, header=None):
    """Write sections back as cfg text (atomically)."""
    lines = [f"# {l}" for l in (header or "").splitlines()]
    for s in sections:
        lines.append(f"[{s.name}]")
        lines += [f"{k}={v}" for k, v in s.options]
        lines.append("")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)


def net_option(path, key, default=None, cast=str):
    """A [net] option of a cfg file."""
    v = read_cfg(path)[0].get(key)
    return default if v is None else cast(v)
