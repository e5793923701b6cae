"""The package's import structure, read from the source (docs/architecture.md, "Layers").

Each library package imports only packages below it (or itself), never the application layer;
there are no import cycles between modules; reidkit modules are imported inside functions only
by the CLI verbs (so that ``reidkit --help`` stays fast); and a file stays under the size the
project allows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "reidkit"

# rank of each top-level package: a module may import its own package or a lower rank only
LAYERS = {
    "utils": 0,
    "config": 1,
    "data": 2,
    "models": 2,
    "losses": 3,
    "evaluation": 3,
    "engine": 4,
    "deploy": 4,
    "app": 5,
}
ROOT_MODULES = {"cli": 6, "__main__": 6, "config_doc": 6}  # entry points over the app layer
INNER_IMPORTS_ALLOWED = ("reidkit.app.commands.",)  # CLI verbs import the library lazily
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(path: Path, name: str) -> list[tuple[str, bool, int]]:
    """``(imported reidkit module, inside a function, line)`` for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inner = {
        id(n)
        for fn in ast.walk(tree)
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
        for n in ast.walk(fn)
    }
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_pkg else name.split(".")[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            if t == "reidkit" or t.startswith("reidkit."):
                found.append((t, id(node) in inner, node.lineno))
    return found


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The module an import names (``reidkit.a.b.name`` -> ``reidkit.a.b``)."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def _rank(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1  # the root package face: importable from everywhere
    if parts[1] in LAYERS:
        return LAYERS[parts[1]]
    return ROOT_MODULES[parts[1]]


def _graph() -> tuple[dict[str, set[str]], list[str], list[str]]:
    """Module import edges, upward imports, misplaced inner imports."""
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    upward, inner = [], []
    for name, path in modules.items():
        for target, in_function, line in _imports(path, name):
            dep = _resolve(target, modules)
            if dep is None or dep == name:
                continue
            where = f"{path.relative_to(SRC.parent)}:{line} imports {dep}"
            if in_function and not name.startswith(INNER_IMPORTS_ALLOWED):
                inner.append(where)
            own, other = name.split(".")[:2], dep.split(".")[:2]
            top_face = name == "reidkit"  # the root face may point anywhere (lazily)
            if own != other and _rank(dep) >= _rank(name) and len(other) > 1 and not top_face:
                upward.append(where)
            edges[name].add(dep)
    return edges, upward, inner


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_package_has_a_layer() -> None:
    tops = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    files = {p.stem for p in SRC.glob("*.py")} - {"__init__"}
    assert tops == set(LAYERS), "a new package needs a layer in LAYERS and docs/architecture.md"
    assert files == set(ROOT_MODULES)


def test_layers_import_only_downward() -> None:
    _, upward, _ = _graph()
    assert upward == [], "imports that run up the layers:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    edges, _, _ = _graph()
    assert _cycles(edges) == []


def test_no_reidkit_imports_inside_functions_outside_cli_verbs() -> None:
    _, _, inner = _graph()
    assert inner == [], "move these imports to the top of the module:\n" + "\n".join(inner)


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: p.name)
def test_files_stay_small(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rules above can fail: an upward import and a two-module cycle are found."""
    edges = {"reidkit.a.x": {"reidkit.a.y"}, "reidkit.a.y": {"reidkit.a.x"}}
    assert _cycles(edges) == [["reidkit.a.x", "reidkit.a.y"]]
    assert _rank("reidkit.data.build") < _rank("reidkit.app.build")
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from reidkit.app import build_run\n")
    assert _imports(bad, "reidkit.data.m") == [
        ("reidkit.app.build_run", True, 2),
        ("reidkit.app", True, 2),
    ]
