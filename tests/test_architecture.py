"""The house rules of the layout (ARCHITECTURE.md), read from the source: what may import what, and how
long a file or a function may grow.

Layers, lowest first: ``schedulers`` <- ``runtime`` <- ``serve`` <- ``export`` <- ``cli``. A layer imports
only the layers below it; ``schedulers``, ``runtime`` and ``serve`` never import torch, diffusers or
transformers, not even inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schedulers", "runtime", "serve", "export", "cli")  # lowest layer first
TORCH_SIDE = ("torch", "diffusers", "transformers")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60  # the body, docstring included: diffusers-style signatures do not count
SOURCE_DIRS = (*PACKAGES, "benchmarks", "tools", "training")


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it, as an absolute dotted name."""
    package = ".".join(("sdrt", *path.relative_to(ROOT).parent.parts))
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            else:
                found.add(node.module or "")
    return found


@pytest.mark.parametrize("layer", PACKAGES)
def test_layers_import_only_downwards(layer: str) -> None:
    above = PACKAGES[PACKAGES.index(layer) + 1 :]
    wrong = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(layer)
        for module in imported_modules(path)
        if any(module == f"sdrt.{up}" or module.startswith(f"sdrt.{up}.") for up in above)
    }
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("layer", ["schedulers", "runtime", "serve"])
def test_torch_free_layers_never_import_torch(layer: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(layer)
        for module in imported_modules(path)
        if module.split(".")[0] in TORCH_SIDE
    }
    assert not wrong, sorted(wrong)


def test_the_import_checker_sees_imports() -> None:
    """The checks above would pass on an empty import list: make sure they read real ones."""
    build = imported_modules(ROOT / "export" / "build.py")
    assert "sdrt.runtime.bundle.manifest" in build and "sdrt.export.jobs" in build
    trace = imported_modules(ROOT / "export" / "onnx" / "trace.py")
    assert "torch" in trace and "sdrt.export.onnx.matmul_attention" in trace


def test_no_file_over_the_limit() -> None:
    long = {
        f"{p.relative_to(ROOT)}: {n} lines"
        for p in python_files(*SOURCE_DIRS, "tests")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    }
    assert not long, sorted(long)


def test_no_function_over_the_limit() -> None:
    long = set()
    for path in python_files(*SOURCE_DIRS):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.body[0].lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.add(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not long, sorted(long)


BACKEND_NAMES = frozenset({"onnx", "ort", "openvino", "tensorrt", "cpu", "cuda"})
BACKEND_OWNERS = (
    "runtime/backends/",  # the owner: one module per backend and the registry
    # each backend's own implementation, which runs only for that backend (its engine, its export stage)
    "runtime/engines/ort/",
    "runtime/engines/openvino/",
    "runtime/engines/tensorrt/",
    "export/ort/",
    "export/openvino/",
    "export/tensorrt/",
    "export/diffusers_reference.py",  # diffusers' side of sdrt bench: a torch device, not a backend
)
TORCH_DEVICE_FUNCTIONS = ("torch", "export_device")  # functions passing a device to torch


def backend_comparisons(source: str) -> list[str]:
    """``x == "cuda"``, ``backend in ("ort", "onnx")``...: each comparison in ``source`` against a backend,
    provider or device name (a string constant of BACKEND_NAMES, alone or in a tuple, list or set), as
    "line: code". Comparisons inside a function named for torch or the export device (``resolve_export_device``,
    ``_torch_has_cuda``) pick a torch device, not a backend, and are left out."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
            word in node.name for word in TORCH_DEVICE_FUNCTIONS
        ):
            skipped.update(id(inner) for inner in ast.walk(node))

    def names(node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in BACKEND_NAMES
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(names(element) for element in node.elts)
        return False

    return [
        f"{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare) and id(node) not in skipped
        if any(names(operand) for operand in (node.left, *node.comparators))
    ]


def test_no_backend_comparison_outside_the_backends() -> None:
    """A backend is a row of ``sdrt.runtime.backends``: code elsewhere looks its facts up (``get_backend(p).device``,
    ``.on_gpu``, ``.record_field``...) instead of comparing names, so that adding a backend edits no if-chain."""
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in python_files(*PACKAGES)
        if not str(path.relative_to(ROOT)).startswith(BACKEND_OWNERS)
        for line in backend_comparisons(path.read_text(encoding="utf-8"))
    ]
    assert not found, found


def test_the_backend_checker_sees_comparisons() -> None:
    snippet = (
        'if provider == "cuda": pass\n'
        'ok = backend in ("ort", "onnx")\n'
        'fine = dtype == "float16"\n'
        'def resolve_export_device(d):\n    return d == "cuda"\n'
    )
    assert backend_comparisons(snippet) == ["1: provider == 'cuda'", "2: backend in ('ort', 'onnx')"]


def model_type_decisions(source: str, types: set[str], ambiguous: set[str]) -> list[str]:
    """Where ``source`` decides by a model-type name: compares with one (``==``, ``in`` a tuple of them),
    ``.startswith("sdxl")``, tables keyed by them or lists of them. ``ambiguous``: names that are also a task or a mode
    ("inpaint"), counted only where the other side reads a model type."""
    plain = types - ambiguous
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            names = {c for o in operands for c in _string_constants(o)} & types
            reads_type = "model_type" in ast.unparse(node)
            if names & plain or (names and reads_type):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("startswith", "endswith") and any(
                name.startswith(c) for a in node.args for c in _string_constants(a) for name in plain
            ):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            if keys and set(keys) <= types and (set(keys) & plain or len(keys) > 1):
                found.append(f"{node.lineno}: a table keyed by model types ({', '.join(keys)})")
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            names = _string_constants(node)
            if len(names) > 1 and set(names) <= types and set(names) & plain:
                found.append(f"{node.lineno}: a list of model types ({', '.join(names)})")
    return sorted(set(found), key=lambda line: int(line.split(":")[0]))


def _string_constants(node: ast.AST) -> list[str]:
    """The string constants ``node`` is, or holds as a tuple, list or set."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [s for e in node.elts for s in _string_constants(e)]
    return []


def _model_type_names() -> tuple[set[str], set[str]]:
    from sdrt.runtime import families

    types = set(families.model_types())
    tasks = {t for f in families.FAMILIES for t in f.tasks} | {"txt2img", "img2img", "inpaint", "depth"}
    return types, types & tasks


def test_only_the_families_decide_by_model_type() -> None:
    """A model type's parts, features and pipelines are looked up in ``runtime/families``, not compared."""
    types, ambiguous = _model_type_names()
    owner = ROOT / "runtime" / "families"
    wrong = [
        f"{path.relative_to(ROOT)}:{where}"
        for path in python_files(*PACKAGES)
        if owner not in path.parents
        for where in model_type_decisions(path.read_text(encoding="utf-8"), types, ambiguous)
    ]
    assert not wrong, wrong


def test_the_model_type_checker_sees_decisions() -> None:
    types, ambiguous = _model_type_names()
    source = """
if folder.model_type == "sdxl": pass
if kind in ("sd1", "sd2"): pass
if model.model_type.startswith("sdxl"): pass
TABLE = {"sd1": 1, "inpaint": 2}
if bundle.model_type != "inpaint": pass
if mode == "inpaint": pass
MODES = {"txt2img": 1, "inpaint": 2}
BENCHED = ("sd1", "sd2", "uncond")
"""
    found = model_type_decisions(source, types, ambiguous)
    assert sorted({int(line.split(":")[0]) for line in found}) == [2, 3, 4, 5, 6, 9], found
