"""The import layering of DESIGN.md, checked by reading every module of src/edgesep with ``ast``.

A module may import only from its own layer or lower ones. Every import counts, including those
inside functions (a lazy import is still a dependency) and under ``TYPE_CHECKING``; the package
root ``edgesep/__init__.py`` is the exception, allowed to import lazily inside functions only.
``runtime/`` must not import torch, directly or through any edgesep module it loads.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = "edgesep"
SRC = Path(__file__).resolve().parents[1] / "src" / ROOT

# the first name after "edgesep." decides the layer (DESIGN.md, "Who may import whom")
LAYERS: dict[str, int] = {
    "config": 0,
    "registry": 0,
    "audio": 0,
    "metrics": 0,
    "sysinfo": 0,  # host description for manifests (stdlib only)
    "atomic": 0,  # atomic file and folder writes (stdlib only)
    "errors": 0,  # the project's error types (stdlib only); not yet listed in DESIGN.md
    "chunking": 0,  # torch-free overlap-add chunking shared by models.apply and runtime
    "nn": 1,
    "models": 2,
    "zoo": 2,
    "data": 3,
    "train": 4,
    "export": 4,
    "bench": 4,
    "evaluate": 4,
    "evaluate_music": 4,
    "runtime": 4,  # a consumer of exported files, like export and bench; torch-free (below)
    "compress": 5,
    "search": 6,
    "cli": 7,
    "__main__": 7,
}
# rules that layers alone do not express: (importer, imported)
FORBIDDEN = {("compress", "train"): "compress takes a `fit` callable instead of importing train"}
TOP = max(LAYERS.values())
# names of the package root anyone may import (it has no module-level imports of its own)
ROOT_NAMES_FOR_ALL = {"__version__"}
TORCH_MODULES = ("torch", "torchaudio", "torchvision", "safetensors.torch")
COMPUTED = "<computed name>"
# modules whose import_module(name) takes its names from a literal table: module -> table name
COMPUTED_FROM = {"edgesep.bench.memprobe": "_BASELINE_IMPORTS"}


@dataclass(frozen=True)
class Import:
    target: str  # absolute dotted name: a module, or a module's attribute
    line: int
    lazy: bool  # inside a function body
    type_only: bool  # under `if TYPE_CHECKING:`


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def find_imports(source: str, module: str, is_package: bool = False) -> list[Import]:
    """Every import in ``source`` (module ``module``), with relative names made absolute.

    ``importlib.import_module("...")`` and ``__import__("...")`` with a literal name count too;
    with a computed name they are recorded as :data:`COMPUTED` (a violation: the check cannot
    see what they load), except in the modules of :data:`COMPUTED_FROM`, whose names come from
    a literal table that is read instead.
    """
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(a.name, node.lineno, lazy, type_only) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            for alias in node.names:
                found.append(Import(f"{base}.{alias.name}", node.lineno, lazy, type_only))
        elif isinstance(node, ast.Call) and node.args:
            func, arg = node.func, node.args[0]
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            if name in {"import_module", "__import__"}:
                target = ast.literal_eval(arg) if literal else COMPUTED
                found.append(Import(target, node.lineno, lazy, type_only))
        elif isinstance(node, ast.Assign) and module in COMPUTED_FROM:
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if COMPUTED_FROM[module] in names:
                for const in ast.walk(node.value):
                    if isinstance(const, ast.Constant) and str(const.value).startswith(ROOT + "."):
                        found.append(Import(str(const.value), node.lineno, lazy, type_only))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, lazy, True)
            for child in node.orelse:
                visit(child, lazy, type_only)
            return
        inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner, type_only)

    visit(ast.parse(source), False, False)
    return found


def _area(name: str) -> str | None:
    """The layer key of an edgesep module or attribute name; None outside the package."""
    parts = name.split(".")
    if parts[0] != ROOT:
        return None
    return parts[1] if len(parts) > 1 else ""


def layer_violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Import-layer violations of one module, as readable one-line messages."""
    area = _area(module) or ""
    if module != ROOT and area not in LAYERS:
        return [f"{module}: top-level module {area!r} has no layer; add it to DESIGN.md and here"]
    own = LAYERS.get(area, TOP)
    problems: list[str] = []
    for imp in find_imports(source, module, is_package):
        if imp.target == COMPUTED and module not in COMPUTED_FROM:
            problems.append(
                f"{module}:{imp.line} imports a computed name, which this check cannot see; "
                "name the module literally (or register it as an entry point)"
            )
            continue
        target = _area(imp.target)
        if target is None or target in ROOT_NAMES_FOR_ALL:
            continue
        where = f"{module}:{imp.line} imports {imp.target}"
        if module == ROOT:
            if not (imp.lazy or imp.type_only):
                problems.append(f"{where} at module level; the root may import lazily only")
            elif target == "cli":
                problems.append(f"{where}; nothing imports cli")
        elif target not in LAYERS:
            # the root itself, a name defined in it (the user API), or an unassigned module
            if own < TOP:
                problems.append(
                    f"{where}: {target!r} is not a layered module (an unassigned module, or the "
                    "root's user API, which is for cli only)"
                )
        elif LAYERS[target] > own:
            problems.append(
                f"{where}: {target} (layer {LAYERS[target]}) is above {area} (layer {own})"
            )
        elif (area, target) in FORBIDDEN:
            problems.append(f"{where}: {FORBIDDEN[(area, target)]}")
    return problems


def _imports_torch(imp: Import) -> bool:
    return any(imp.target == t or imp.target.startswith(t + ".") for t in TORCH_MODULES)


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def torch_violations(modules: dict[str, tuple[str, bool]], area: str = "runtime") -> list[str]:
    """torch imports reachable from the ``area`` modules of ``modules`` {name: (source, is_pkg)}.

    Follows module-level imports through edgesep (and the packages' ``__init__``s that importing
    runs); in the ``area`` modules themselves, imports inside functions count as well.
    """
    problems: list[str] = []
    imports = {name: find_imports(src, name, pkg) for name, (src, pkg) in modules.items()}

    def module_of(target: str) -> str | None:
        # "edgesep.metrics.si_snr" names an attribute of edgesep.metrics
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    starts = [n for n in modules if _area(n) == area]
    for start in starts:
        seen: set[str] = set()
        stack = [(start, start), *((p, start) for p in _parents(start))]
        while stack:
            name, via = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            for imp in imports.get(name, []):
                if imp.type_only or (imp.lazy and _area(name) != area):
                    continue
                chain = name if name == start else f"{start} -> {via} -> {name}"
                if _imports_torch(imp):
                    problems.append(
                        f"{chain}:{imp.line} imports {imp.target}; {area} is torch-free"
                    )
                target = module_of(imp.target) if _area(imp.target) is not None else None
                if target is not None:
                    stack.extend((m, name) for m in [target, *_parents(target)] if m != ROOT)
    return sorted(set(problems))


def load_package(src: Path = SRC) -> dict[str, tuple[str, bool]]:
    modules: dict[str, tuple[str, bool]] = {}
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src.parent).with_suffix("")
        is_package = rel.name == "__init__"
        name = ".".join(rel.parts[:-1] if is_package else rel.parts)
        modules[name] = (path.read_text(encoding="utf-8"), is_package)
    return modules


# ----------------------------------------------------------------------------- the real package


def test_the_package_is_found() -> None:
    modules = load_package()
    assert {
        "edgesep",
        "edgesep.metrics.sisnr",
        "edgesep.models.convtasnet",
        "edgesep.nn.tcn",
    } <= set(modules)


def test_every_module_respects_the_layers() -> None:
    problems = [
        p for name, (src, pkg) in load_package().items() for p in layer_violations(name, src, pkg)
    ]
    assert not problems, "\n".join(problems)


def test_runtime_does_not_import_torch() -> None:
    problems = torch_violations(load_package())
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- the checker itself


@pytest.mark.parametrize(
    ("module", "source", "reason"),
    [
        (
            "edgesep.nn.tcn",
            "from edgesep.models.convtasnet import ConvTasNet\n",
            "models (layer 2)",
        ),
        ("edgesep.nn.tcn", "import edgesep.train.loop\n", "train (layer 4)"),
        ("edgesep.models.convtasnet", "from ..data import mixing\n", "data (layer 3)"),
        ("edgesep.models.convtasnet", "from ..export.onnx import export_onnx\n", "export"),
        ("edgesep.metrics.sdr", "def f():\n    from edgesep.nn import tcn\n", "nn (layer 1)"),
        (
            "edgesep.metrics.sdr",
            "import importlib\nimportlib.import_module('edgesep.train')\n",
            "train",
        ),
        (
            "edgesep.metrics.sdr",
            "if TYPE_CHECKING:\n    from edgesep.models.base import Separator\n",
            "models (layer 2)",
        ),
        ("edgesep.compress.prune", "from edgesep.train.loop import fit\n", "`fit` callable"),
        ("edgesep.train.loop", "from edgesep.cli.main import app\n", "cli (layer 7)"),
        ("edgesep.data.mixing", "from edgesep import load_model\n", "user API"),
        ("edgesep", "from edgesep.models import base\n", "lazily only"),
        ("edgesep", "def main():\n    from edgesep.cli.main import app\n", "nothing imports cli"),
        ("edgesep.utils", "import numpy\n", "has no layer"),
        (
            "edgesep.models.artifact",
            "import importlib\nfor m in MODS:\n    importlib.import_module(m)\n",
            "computed name",
        ),
        (
            "edgesep.bench.memprobe",
            "_BASELINE_IMPORTS = {'torch': ('edgesep.cli.main',)}\n",
            "cli (layer 7)",
        ),
    ],
)
def test_checker_flags_bad_imports(module: str, source: str, reason: str) -> None:
    problems = layer_violations(module, source)
    assert len(problems) == 1 and reason in problems[0], problems


@pytest.mark.parametrize(
    ("module", "source", "is_package"),
    [
        ("edgesep.models.convtasnet", "from edgesep.nn.tcn import TCNBlock\nimport torch\n", False),
        ("edgesep.models.convtasnet", "from . import base\nfrom .base import Separator\n", False),
        ("edgesep.models", "from .convtasnet import ConvTasNet\n", True),
        (
            "edgesep.compress.prune",
            "from edgesep.data import mixing\nfrom ..bench import x\n",
            False,
        ),
        ("edgesep.train.loop", "from edgesep import __version__\n", False),
        (
            "edgesep.cli.main",
            "from edgesep import load_model\nfrom edgesep.nas import search\n",
            False,
        ),
        ("edgesep", "def load():\n    from edgesep.zoo import load\n", True),
        ("edgesep", "if TYPE_CHECKING:\n    from edgesep.models.base import Separator\n", True),
    ],
)
def test_checker_accepts_good_imports(module: str, source: str, is_package: bool) -> None:
    assert layer_violations(module, source, is_package) == []


def test_relative_imports_resolve() -> None:
    src = "from . import norm\nfrom .tcn import TCNBlock\nfrom .. import config\n"
    got = [i.target for i in find_imports(src, "edgesep.nn.layers")]
    assert got == ["edgesep.nn.norm", "edgesep.nn.tcn.TCNBlock", "edgesep.config"]
    got = [i.target for i in find_imports("from .tcn import X\n", "edgesep.nn", is_package=True)]
    assert got == ["edgesep.nn.tcn.X"]


def test_torch_check_follows_imports_through_edgesep() -> None:
    def pkg(**modules: str) -> dict[str, tuple[str, bool]]:
        table = {"edgesep": ("", True), "edgesep.runtime": ("", True), "edgesep.audio": ("", False)}
        table.update({k.replace("__", "."): (v, False) for k, v in modules.items()})
        return table

    clean = pkg(
        edgesep__runtime__session="import numpy\nimport onnxruntime\nimport edgesep.audio\n"
    )
    assert torch_violations(clean) == []
    direct = pkg(edgesep__runtime__session="def run():\n    import torch\n")
    assert torch_violations(direct)
    indirect = pkg(
        edgesep__runtime__session="from edgesep.metrics.sisnr import si_snr\n",
        edgesep__metrics__sisnr="import torch\n",
    )
    assert "edgesep.metrics.sisnr" in " ".join(torch_violations(indirect))
    # a package __init__ that importing runs counts too
    via_init = pkg(edgesep__runtime__session="from edgesep.audio import read\n")
    via_init["edgesep.runtime"] = ("from safetensors.torch import load_file\n", True)
    assert torch_violations(via_init)
    # but a lazy torch import in a module runtime merely uses is not reached at import time
    lazy = pkg(edgesep__runtime__session="import edgesep.audio\n")
    lazy["edgesep.audio"] = ("def f():\n    import torch\n", False)
    assert torch_violations(lazy) == []


def test_replayer_entry_points_name_compress_functions() -> None:
    """Artifacts find each pass's replayer through pyproject's entry points: every one must
    name a function of a compress module, and every structural pass must have one."""
    import importlib
    import tomllib

    project = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["project"]
    points = project["entry-points"]["edgesep.replayers"]
    from edgesep.models.artifact import REPLAYERS

    for target in points.values():
        module, _, attr = target.partition(":")
        assert _area(module) == "compress", target
        assert callable(getattr(importlib.import_module(module), attr)), target
    # every replayer that edgesep.compress registers has its entry point (tests add their own)
    ours = {n for n in REPLAYERS.names() if REPLAYERS.get(n).__module__.startswith("edgesep.")}
    assert set(points) == ours
