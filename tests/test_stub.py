"""darknet_py/_core.pyi (scripts/make_stub.sh) names exactly what the built
extension exports: its functions, its classes and their public members."""
import ast
import os

from darknet_py import _core
from conftest import ROOT


def public(names):
    return {n for n in names if not n.startswith("_")}


def test_stub_matches_the_extension():
    tree = ast.parse(open(os.path.join(ROOT, "darknet_py", "_core.pyi")).read())
    stub = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            stub[node.name] = None
        elif isinstance(node, ast.ClassDef):
            stub[node.name] = public(n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
    # testing: the test hooks of DARKNET_TEST_HOOKS=1 builds, not part of the stub
    assert set(stub) == public(dir(_core)) - {"annotations", "testing"}, "run scripts/make_stub.sh"
    for name, members in stub.items():
        if members is not None:
            assert members == public(dir(getattr(_core, name))), f"{name}: run scripts/make_stub.sh"
